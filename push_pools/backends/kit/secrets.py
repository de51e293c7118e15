"""Values known to be secret, inside a request: masked when previewed, revealed only when sent.

A request builder wraps every value it knows to be secret (the orchestrator's credentials, env names the template
declares secure, a registry password) in `pydantic.SecretStr`. Nothing is guessed from key names: a tag whose key is
`key`, or an env name containing "KEY", is shown as it is. `preview` is the request as `push-pool preview` prints it;
`reveal` is the request as the SDK receives it; `secret_values` lists what error messages must not repeat.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

MASK = "********"
CREDENTIAL_ENV = frozenset({"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"})
"""Env names of the orchestrator's credentials, which push-pools itself hands to every run: always secret."""


def secret_env(env: dict[str, Any], secure_names: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """The env with the values of credential and `secure_names` entries wrapped as secrets."""
    secret = CREDENTIAL_ENV | set(secure_names)
    return {
        name: SecretStr(value) if name in secret and isinstance(value, str) and value else value
        for name, value in env.items()
    }


def preview(node: Any) -> Any:
    """The request with every secret value shown as `********`."""
    return _map(node, lambda secret: MASK)


def reveal(node: Any) -> Any:
    """The request as sent: secret values in clear."""
    return _map(node, SecretStr.get_secret_value)


def secret_values(node: Any) -> list[str]:
    """Every secret value in the request (to scrub from error messages)."""
    found: list[str] = []
    _map(node, lambda secret: found.append(secret.get_secret_value()))
    return [value for value in found if value]


def _map(node: Any, on_secret: Any) -> Any:
    if isinstance(node, SecretStr):
        return on_secret(node)
    if isinstance(node, dict):
        return {key: _map(value, on_secret) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_map(item, on_secret) for item in node]
    return node
