"""A small HTTP client for Prefect 3's REST API: connection settings, authentication, retries, error mapping.

The `prefect` package is not a dependency: this speaks the API with httpx. The connection is read the way Prefect
reads it: `PREFECT_API_URL`, `PREFECT_API_KEY` (Prefect Cloud) and `PREFECT_API_AUTH_STRING` (`user:password` for a
self-hosted server behind basic auth), from the environment first, then from the active Prefect profile
(`$PREFECT_HOME/profiles.toml`, `PREFECT_PROFILE` or the file's `active` entry), so a machine set up with
`prefect config set` or `prefect cloud login` works as it is.

Errors, in push-pools' tree: a connection failure, a timeout, HTTP 5xx or 429 is retried (jittered exponential
backoff capped at 4 s, longer when `Retry-After` says so, in seconds or as an HTTP date, up to 10 s a wait) for at
most 12 tries and 30 s of waiting in all, and then raised as `OrchestratorUnavailableError`. A SQLite-backed server
answers 503 "database is locked" while other writers hold its database, which happens under a burst of claims from
many dispatchers at once: the jitter spreads their retries so the lock clears. A retried write is safe: the 503
means Prefect rolled it back, and a claim repeated after a lost answer is recognised by its transition id.
401/403 are an `OrchestratorError` naming the credentials; 404 a `NotFoundError`; 409 an `AlreadyExistsError`;
anything else the API refuses an `OrchestratorError` with Prefect's own detail.
"""

from __future__ import annotations

import base64
import email.utils
import os
import re
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from push_pools.errors import (
    AlreadyExistsError,
    ConfigurationError,
    NotFoundError,
    OrchestratorError,
    OrchestratorUnavailableError,
)

CLOUD_WORKSPACE_PATH = re.compile(r"/accounts/[0-9a-fA-F-]{36}/workspaces/[0-9a-fA-F-]{36}/?$")
"""Prefect Cloud's API URLs end in the workspace; a self-hosted server's end in `/api`."""
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 10.0
_DETAIL_CHARS = 300


@dataclass(frozen=True)
class PrefectConnection:
    """Where Prefect's API is and how to authenticate. `repr` never shows the credentials."""

    api_url: str
    api_key: str | None = None
    auth_string: str | None = None

    def __repr__(self) -> str:
        return f"PrefectConnection(api_url={self.api_url!r}, cloud={self.is_cloud})"

    @property
    def is_cloud(self) -> bool:
        return CLOUD_WORKSPACE_PATH.search(httpx.URL(self.api_url).path) is not None

    def headers(self) -> dict[str, str]:
        """The Authorization header: basic auth when an auth string is set (as Prefect's client does), else the key."""
        if self.auth_string:
            token = base64.b64encode(self.auth_string.encode()).decode()
            return {"Authorization": f"Basic {token}"}
        if self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PrefectConnection:
        """Read the connection from the environment, then the active Prefect profile; error if there is no URL."""
        environ = os.environ if environ is None else environ
        profile = _active_profile(environ)
        values = {name: environ.get(name) or profile.get(name) for name in _SETTING_NAMES}
        api_url = values["PREFECT_API_URL"]
        if not api_url:
            raise ConfigurationError(
                "PUSH_POOL_ORCHESTRATOR=prefect needs PREFECT_API_URL, e.g. http://127.0.0.1:4200/api for a "
                "self-hosted server or https://api.prefect.cloud/api/accounts/<id>/workspaces/<id> for Prefect Cloud"
            )
        url = httpx.URL(api_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(f"PREFECT_API_URL {api_url!r} is not an http(s) URL")
        return cls(
            api_url=api_url.rstrip("/"),
            api_key=values["PREFECT_API_KEY"] or None,
            auth_string=values["PREFECT_API_AUTH_STRING"] or None,
        )


_SETTING_NAMES = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")


def _active_profile(environ: Mapping[str, str]) -> dict[str, str]:
    """The Prefect settings of the active profile, or nothing when there is no readable profiles file."""
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    name = environ.get("PREFECT_PROFILE") or document.get("active") or "ephemeral"
    profile = document.get("profiles", {}).get(name, {})
    return (
        {key: str(value) for key, value in profile.items() if key in _SETTING_NAMES}
        if isinstance(profile, dict)
        else {}
    )


class _WaitRetryAfter(wait_base):
    """Short jittered backoff, lengthened to the server's Retry-After (capped, so a call stays brief), and never
    past what is left of the call's waiting budget."""

    def __init__(self, cap: float, budget: float) -> None:
        self._jitter = wait_random_exponential(multiplier=0.25, max=cap)
        self._budget = budget

    def __call__(self, retry_state: RetryCallState) -> float:
        hint = 0.0
        if retry_state.outcome is not None and retry_state.outcome.failed:
            error = retry_state.outcome.exception()
            if isinstance(error, _Transient):
                hint = min(error.retry_after or 0.0, _MAX_RETRY_AFTER_SECONDS)
        wait = max(hint, float(self._jitter(retry_state)))
        return max(0.0, min(wait, self._budget - retry_state.idle_for))


class _StopWhenWaitedFor(stop_base):
    """Stop once the waits between tries add up to the budget (the tries themselves are bounded by the timeout)."""

    def __init__(self, budget: float) -> None:
        self._budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for >= self._budget


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.tries = 1


class PrefectApi:
    """Sends requests to Prefect's API and translates its failures. Thread-safe (httpx clients are)."""

    def __init__(
        self,
        connection: PrefectConnection,
        *,
        timeout: float = 15.0,
        attempts: int = 12,
        backoff_max_seconds: float = 4.0,
        retry_budget_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.connection = connection
        self._client = httpx.Client(
            base_url=connection.api_url + "/",
            headers={**connection.headers(), "User-Agent": "push-pools"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
        )
        self._attempts = attempts
        self._backoff_max = backoff_max_seconds
        self._retry_budget = retry_budget_seconds
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, *, missing: str | None = None) -> Any:
        return self.request("GET", path, missing=missing)

    def post(self, path: str, body: Any = None, *, missing: str | None = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {}, missing=missing)

    def patch(self, path: str, body: Any, *, missing: str | None = None) -> Any:
        return self.request("PATCH", path, json=body, missing=missing)

    def put(self, path: str, body: Any, *, missing: str | None = None) -> Any:
        return self.request("PUT", path, json=body, missing=missing)

    def delete(self, path: str, *, missing: str | None = None) -> Any:
        return self.request("DELETE", path, missing=missing)

    def request(self, method: str, path: str, *, missing: str | None = None, **kwargs: Any) -> Any:
        """Send one request (retrying transient failures); the decoded JSON body, or None when there is none.

        `missing` is the NotFoundError message for a 404 (`no work pool named 'x'`).
        """
        extra: dict[str, Any] = {"sleep": self._sleep} if self._sleep else {}
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self._attempts) | _StopWhenWaitedFor(self._retry_budget),
            wait=_WaitRetryAfter(self._backoff_max, self._retry_budget),
            reraise=True,
            **extra,
        )
        try:
            response = retrying(self._send, method, path.lstrip("/"), kwargs, [0])
        except NotFoundError:
            if missing is None:
                raise
            raise NotFoundError(missing) from None
        except _Transient as exc:
            raise OrchestratorUnavailableError(
                f"Prefect API at {self.connection.api_url} is unavailable: {exc} (after {exc.tries} tries)"
            ) from exc
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise OrchestratorError(f"Prefect API answered {method} /{path.lstrip('/')} with non-JSON") from exc

    def _send(self, method: str, path: str, kwargs: dict[str, Any], tries: list[int]) -> httpx.Response:
        tries[0] += 1
        try:
            return self._send_once(method, path, kwargs)
        except _Transient as exc:
            exc.tries = tries[0]
            raise

    def _send_once(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {response.status_code}", _retry_after(response.headers.get("Retry-After")))
        if response.is_success:
            return response
        raise _error(method, path, response)


def _error(method: str, path: str, response: httpx.Response) -> Exception:
    status = response.status_code
    detail = _detail(response)
    where = f"{method} /{path}"
    if status in (401, 403):
        return OrchestratorError(
            f"Prefect API refused the credentials (HTTP {status} on {where}): check PREFECT_API_KEY for Prefect "
            "Cloud (a wrong or expired API key, or a key without access to this workspace) or "
            "PREFECT_API_AUTH_STRING for a self-hosted server with basic auth"
        )
    if status == 404:
        return NotFoundError(f"Prefect has no such object ({where}): {detail}")
    if status == 409:
        return AlreadyExistsError(f"Prefect refused {where}: it already exists ({detail})")
    return OrchestratorError(f"Prefect refused {where} (HTTP {status}): {detail}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_DETAIL_CHARS] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:_DETAIL_CHARS]
    detail = str(body.get("detail") or body.get("exception_message") or body)
    # A 422 says what is wrong in `exception_detail`: `[{"loc": [...], "msg": "..."}]`.
    problems = [str(item.get("msg")) for item in body.get("exception_detail") or [] if isinstance(item, dict)]
    return "; ".join([detail, *problems])[:_DETAIL_CHARS]


def _retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header, given in seconds or as an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now())
