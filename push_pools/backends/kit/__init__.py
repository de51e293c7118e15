"""The backend kit: what every cloud backend needs, written once.

- `errors`: one mechanism that maps an SDK's errors to ours, fed one `ErrorTable` per cloud (by code or HTTP status,
  never by message text); the errors keep the cloud's code and status.
- `retry_after`: one Retry-After parser (seconds or an HTTP date) and the tenacity wait that honours it.
- `shapes`: argv splitting (a stray quote is a TemplateError), env lists, tags and labels.
- `cache`: one small TTL cache, computed once per key even under concurrent callers.
- `gate`: one rate gate, closed for a while after the cloud said "slow down".
- `secrets`: values known to be secret, masked in a preview and revealed only to be sent.
- `evidence`: the end of a job's output for a crash message or `push-pool runs logs`, bounded and masked.

"Finished" is defined once, beside the states: `push_pools.models.FINISHED_STATES`.
"""
