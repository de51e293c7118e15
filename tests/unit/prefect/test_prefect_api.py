"""The Prefect HTTP client: where the connection comes from, how it authenticates, what it retries and how each
failure reads. Prefect's server cannot be made to fail on demand, so its failures are served by an httpx
MockTransport (the transport interface httpx itself offers for this)."""

from __future__ import annotations

import base64
import email.utils
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from push_pools.errors import (
    AlreadyExistsError,
    ConfigurationError,
    NotFoundError,
    OrchestratorError,
    OrchestratorUnavailableError,
)
from push_pools.orchestrators.prefect.api import PrefectApi, PrefectConnection

URL = "http://prefect.test/api"
CLOUD = "https://api.prefect.cloud/api/accounts/0d5a2c4e-1f3b-4c6d-8e9f-0a1b2c3d4e5f/workspaces/9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"


def api_answering(
    *answers: httpx.Response | Exception, connection: PrefectConnection | None = None
) -> tuple[PrefectApi, list[httpx.Request], list[float]]:
    requests: list[httpx.Request] = []
    sleeps: list[float] = []
    pending = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        answer = pending.pop(0) if len(pending) > 1 else pending[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    api = PrefectApi(
        connection or PrefectConnection(URL, api_key="pnu_key"),
        transport=httpx.MockTransport(handle),
        sleep=sleeps.append,
        attempts=3,
    )
    return api, requests, sleeps


def test_a_request_carries_the_key_and_decodes_json() -> None:
    api, requests, _ = api_answering(httpx.Response(200, json={"name": "pool"}))

    assert api.get("work_pools/pool") == {"name": "pool"}
    assert str(requests[0].url) == f"{URL}/work_pools/pool"
    assert requests[0].headers["Authorization"] == "Bearer pnu_key"


def test_basic_auth_wins_over_a_key_as_in_prefects_client() -> None:
    connection = PrefectConnection(URL, api_key="pnu_key", auth_string="admin:pass")
    expected = "Basic " + base64.b64encode(b"admin:pass").decode()
    assert connection.headers() == {"Authorization": expected}
    assert PrefectConnection(URL).headers() == {}


def test_the_connection_never_shows_its_credentials() -> None:
    connection = PrefectConnection(URL, api_key="pnu_secret", auth_string="admin:hunter2")
    assert "pnu_secret" not in repr(connection)
    assert "hunter2" not in repr(connection)


@pytest.mark.parametrize(
    ("status", "headers"),
    [(503, {}), (502, {}), (500, {}), (429, {"Retry-After": "3"}), (408, {})],
)
def test_transient_answers_are_retried_then_succeed(status: int, headers: dict[str, str]) -> None:
    api, requests, sleeps = api_answering(httpx.Response(status, headers=headers), httpx.Response(200, json=[]))

    assert api.post("work_pools/filter", {}) == []
    assert len(requests) == 2
    if "Retry-After" in headers:
        assert sleeps == [3.0], "the server's Retry-After is honoured"


def test_a_long_retry_after_is_capped_so_a_call_stays_brief() -> None:
    api, _, sleeps = api_answering(httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(204))
    api.delete("automations/x")
    assert sleeps == [10.0]


def test_a_retry_after_date_is_honoured() -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    api, _, sleeps = api_answering(httpx.Response(503, headers={"Retry-After": later}), httpx.Response(204))
    api.delete("automations/x")
    assert len(sleeps) == 1
    assert 3.0 < sleeps[0] <= 5.0


def test_a_locked_database_is_waited_out_within_the_budget() -> None:
    """A SQLite-backed server answers 503 while other writers hold its database: the client rides out a long
    stretch of them, and stops once its waits reach the budget, not before."""
    requests: list[httpx.Request] = []
    sleeps: list[float] = []

    def locked(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(503, json={"exception_message": "Service Unavailable"})

    api = PrefectApi(
        PrefectConnection(URL),
        transport=httpx.MockTransport(locked),
        sleep=sleeps.append,
        attempts=1000,
        retry_budget_seconds=8,
    )
    with pytest.raises(OrchestratorUnavailableError, match=r"HTTP 503 \(after \d+ tries\)"):
        api.post("flow_runs/x/set_state", {})
    assert sum(sleeps) == pytest.approx(8.0), "waited the whole budget"
    assert len(requests) == len(sleeps) + 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(503, json={"exception_message": "x"})],
)
def test_a_server_that_stays_unavailable_is_an_error_to_retry_later(failure: httpx.Response | Exception) -> None:
    api, requests, _ = api_answering(failure)

    with pytest.raises(OrchestratorUnavailableError, match=r"prefect\.test/api is unavailable: .* \(after 3 tries\)"):
        api.get("flow_runs/x")
    assert len(requests) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_say_which_setting_to_check(status: int) -> None:
    api, requests, _ = api_answering(httpx.Response(status, json={"detail": "Invalid API key"}))

    with pytest.raises(OrchestratorError, match="refused the credentials") as raised:
        api.get("work_pools/pool")
    assert "PREFECT_API_KEY" in str(raised.value)
    assert "PREFECT_API_AUTH_STRING" in str(raised.value)
    assert not isinstance(raised.value, OrchestratorUnavailableError)
    assert len(requests) == 1, "not retried"


def test_not_found_takes_the_callers_words() -> None:
    api, _, _ = api_answering(httpx.Response(404, json={"detail": "Work pool not found."}))

    with pytest.raises(NotFoundError, match=r"^no work pool named 'x'$"):
        api.get("work_pools/x", missing="no work pool named 'x'")
    with pytest.raises(NotFoundError, match="Work pool not found"):
        api.get("work_pools/x")


def test_a_conflict_is_already_exists() -> None:
    api, _, _ = api_answering(httpx.Response(409, json={"detail": "exists"}))
    with pytest.raises(AlreadyExistsError):
        api.post("work_pools/", {"name": "x"})


def test_a_refusal_quotes_prefects_validation_messages() -> None:
    body = {
        "exception_message": "Invalid request received.",
        "exception_detail": [{"loc": ["body", "base_job_template"], "msg": "undeclared variable(s): $HOME"}],
    }
    api, _, _ = api_answering(httpx.Response(422, json=body))

    with pytest.raises(OrchestratorError, match=r"HTTP 422\): Invalid request received\.; undeclared variable"):
        api.post("work_pools/", {})


def test_an_answer_that_is_not_json_is_an_error() -> None:
    api, _, _ = api_answering(httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(OrchestratorError, match="non-JSON"):
        api.get("work_pools/x")


def test_an_empty_answer_is_none() -> None:
    api, _, _ = api_answering(httpx.Response(204))
    assert api.patch("flow_runs/x", {"infrastructure_pid": "a"}) is None


# ---- where the connection comes from ------------------------------------------------------------------------


def write_profiles(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "profiles.toml").write_text(text)
    return home


def test_the_environment_names_the_server(tmp_path: Path) -> None:
    connection = PrefectConnection.from_environment(
        {"PREFECT_API_URL": URL + "/", "PREFECT_API_KEY": "k", "PREFECT_HOME": str(tmp_path)}
    )
    assert (connection.api_url, connection.api_key, connection.auth_string) == (URL, "k", None)
    assert not connection.is_cloud


def test_the_active_profile_fills_what_the_environment_leaves_out(tmp_path: Path) -> None:
    home = write_profiles(
        tmp_path,
        'active = "cloud"\n[profiles.cloud]\nPREFECT_API_URL = "' + CLOUD + '"\nPREFECT_API_KEY = "pnu_profile"\n'
        '[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n',
    )
    from_profile = PrefectConnection.from_environment({"PREFECT_HOME": str(home)})
    assert (from_profile.api_url, from_profile.api_key, from_profile.is_cloud) == (CLOUD, "pnu_profile", True)

    chosen = PrefectConnection.from_environment({"PREFECT_HOME": str(home), "PREFECT_PROFILE": "local"})
    assert (chosen.api_url, chosen.api_key) == ("http://127.0.0.1:4200/api", None)

    overridden = PrefectConnection.from_environment({"PREFECT_HOME": str(home), "PREFECT_API_KEY": "pnu_env"})
    assert overridden.api_key == "pnu_env"


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"PREFECT_API_URL": ""},
    ],
)
def test_no_url_is_a_configuration_error(tmp_path: Path, environment: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="needs PREFECT_API_URL"):
        PrefectConnection.from_environment({"PREFECT_HOME": str(tmp_path), **environment})


@pytest.mark.parametrize("url", ["127.0.0.1:4200/api", "ftp://prefect/api", "http://", "not a url"])
def test_a_url_that_is_not_http_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match="not an http"):
        PrefectConnection.from_environment({"PREFECT_HOME": str(tmp_path), "PREFECT_API_URL": url})


@pytest.mark.parametrize("text", ["not = [toml", "active = 3\n[profiles]\nx = 1\n", ""])
def test_an_unreadable_profiles_file_is_ignored(tmp_path: Path, text: str) -> None:
    home = write_profiles(tmp_path, text)
    connection = PrefectConnection.from_environment({"PREFECT_HOME": str(home), "PREFECT_API_URL": URL})
    assert connection.api_url == URL
