"""One folder per platform, the same files in each: everything about one place runs can go.

- `template.json`: the pool type's default base job template (readable with no SDK installed).
- `backend.py`: the Backend (submit, status, cancel, sweep) and its `build_request`.
- `configuration.py` / `request.py`: the rendered job configuration and the request built from it.
- `status.py`, `errors.py`: the cloud's states and errors, mapped to ours.
- `function.py`: the cloud function's entry points (the triggers that wake a tick).

`local` is the `process` pool type (a subprocess on this machine); `aws` is ECS and Lambda, `gcp` Cloud Run jobs and
Cloud Functions, `azure` Container Instances and Azure Functions. A cloud's folder imports only its own SDK, and
`push-pool package <platform>` ships only that folder.
"""
