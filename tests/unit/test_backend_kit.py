"""The backend kit, table by table: error mapping, Retry-After, argv/env/tags, the TTL cache, the rate gate,
secret values, and the one definition of "finished"."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from push_pools.backends.base import JobLogs
from push_pools.backends.kit import secrets
from push_pools.backends.kit.cache import TtlCache
from push_pools.backends.kit.errors import ErrorTable, SdkFailure
from push_pools.backends.kit.evidence import last_lines, output_tail
from push_pools.backends.kit.gate import RateGate
from push_pools.backends.kit.retry_after import parse_retry_after
from push_pools.backends.kit.shapes import TagRules, env_pairs, replace_forbidden, split_argv, string_map
from push_pools.errors import (
    ExecutorNotReadyError,
    PermanentSubmissionError,
    TemplateError,
    TransientSubmissionError,
)
from push_pools.models import FINISHED_STATES, InfrastructureState, InfrastructureStatus


class FakeSdkError(Exception):
    def __init__(self, code: str | None, status: int | None, retry_after: str | None = None) -> None:
        super().__init__(f"{code} {status}")
        self.code, self.status, self.retry_after = code, status, retry_after


class FakeNoCredentials(Exception):
    pass


TABLE = ErrorTable(
    sdk_errors=lambda: (FakeSdkError, FakeNoCredentials),
    read=lambda exc: SdkFailure(
        getattr(exc, "code", None),
        getattr(exc, "status", None),
        "the cloud says no",
        parse_retry_after(getattr(exc, "retry_after", None)),
    ),
    transient_codes={"QuotaReached"},
    configuration_errors=lambda: (FakeNoCredentials,),
    hints={"AccessDenied": "grant the role", 404: "create it"},
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (FakeSdkError("Throttled", 429), TransientSubmissionError),
        (FakeSdkError("Boom", 503), TransientSubmissionError),
        (FakeSdkError("Slow", 408), TransientSubmissionError),
        (FakeSdkError("QuotaReached", 409), TransientSubmissionError),
        (FakeSdkError(None, None), TransientSubmissionError),
        (FakeSdkError("AccessDenied", 403), PermanentSubmissionError),
        (FakeSdkError("Invalid", 400), PermanentSubmissionError),
        (FakeSdkError("Invalid", None), PermanentSubmissionError),
        (FakeNoCredentials("no credentials"), ExecutorNotReadyError),
    ],
)
def test_errors_are_decided_by_code_and_status(error: Exception, kind: type[Exception]) -> None:
    assert type(TABLE.translate(error, "Create")) is kind


def test_errors_carry_the_cloud_code_status_retry_after_and_hint() -> None:
    throttled = TABLE.translate(FakeSdkError("Throttled", 429, "3"), "Create")
    assert isinstance(throttled, TransientSubmissionError)
    assert (throttled.code, throttled.status, throttled.retry_after) == ("Throttled", 429, 3.0)
    assert str(throttled) == "Create: HTTP 429 Throttled: the cloud says no"
    denied = TABLE.translate(FakeSdkError("AccessDenied", 403), "Create")
    assert str(denied) == "Create: HTTP 403 AccessDenied: the cloud says no — grant the role"
    assert "create it" in str(TABLE.translate(FakeSdkError("NotFound", 404), "Create"))


def test_translated_raises_ours_from_the_sdk_error_and_scrubs_secrets() -> None:
    with pytest.raises(PermanentSubmissionError) as raised, TABLE.translated("Create", ["the cloud"]):
        raise FakeSdkError("Invalid", 400)
    assert isinstance(raised.value.__cause__, FakeSdkError)
    assert "the cloud" not in str(raised.value)
    with pytest.raises(KeyError), TABLE.translated("Create"):
        raise KeyError("not an SDK error: a bug, left alone")


NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        ("1.5", 1.5),
        ("2s", 2.0),
        ("-4", 0.0),
        ("Fri, 04 Dec 2026 12:00:30 GMT", 30.0),
        ("Fri, 04 Dec 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=lambda: NOW) == seconds


@pytest.mark.parametrize(
    ("value", "argv"),
    [
        ("python -m flows 'a b'", ["python", "-m", "flows", "a b"]),
        (["python", 3], ["python", "3"]),
        ("", None),
        ([], None),
        (None, None),
    ],
)
def test_split_argv(value: object, argv: list[str] | None) -> None:
    assert split_argv(value, "command") == argv


@pytest.mark.parametrize("value", ["echo 'unclosed", 'say "hi', {"not": "argv"}])
def test_split_argv_refuses_with_our_error(value: object) -> None:
    with pytest.raises(TemplateError, match="command"):
        split_argv(value, "command")


def test_env_pairs_and_string_maps_leave_unset_names_out() -> None:
    assert env_pairs({"A": "1", "B": None, "C": ""}) == [{"name": "A", "value": "1"}, {"name": "C", "value": ""}]
    assert string_map({"a": 1, "b": None}) == {"a": "1"}
    assert string_map(["not", "a", "mapping"]) == {}


RULES = TagRules(
    sanitise=replace_forbidden(r"[^a-z0-9_-]", "-", lowercase=True),
    max_key=8,
    max_value=4,
    max_tags=2,
    owner="Cloud",
    letter_first="l-",
    reserved_prefix="cloud-",
)


def test_tag_rules_clean_keys_and_values() -> None:
    assert RULES.clean({"Team Name": "Data Eng", "9lives": "x", "": "dropped"}) == {"team-nam": "data", "l-9lives": "x"}
    with pytest.raises(TemplateError, match="reserved by Cloud"):
        RULES.clean({"Cloud-x": "y"})
    with pytest.raises(TemplateError, match="Cloud allows 2"):
        RULES.check_count({"a": "1", "b": "2", "c": "3"}, "the job")


def test_the_ttl_cache_computes_once_per_key_and_expires() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(ttl=10, clock=lambda: now[0])
    calls: list[str] = []
    barrier = threading.Barrier(4)

    def compute() -> int:
        calls.append("x")
        return 1

    def caller() -> None:
        barrier.wait()
        cache.get_or_compute("k", compute)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["x"]
    assert "k" in cache
    now[0] = 10.0
    assert cache.get("k") is None
    cache.put("k", 2)
    cache.discard("k")
    assert "k" not in cache


def test_the_rate_gate_holds_a_scope_for_the_longest_hint() -> None:
    now = [0.0]
    gate = RateGate(lambda: now[0])
    gate.hold("sub-1", 5)
    gate.hold("sub-1", 2)
    assert gate.remaining("sub-1") == 5
    assert gate.remaining("sub-2") == 0
    now[0] = 6
    assert gate.remaining("sub-1") == 0


def test_secret_values_are_masked_in_previews_and_revealed_when_sent() -> None:
    env = secrets.secret_env({"PREFECT_API_KEY": "pnu_x", "MY_TOKEN": "t", "DB": "p"}, {"DB"})
    request = {"env": env, "tags": [{"key": "team", "value": "data"}]}
    assert secrets.preview(request) == {
        "env": {"PREFECT_API_KEY": "********", "MY_TOKEN": "t", "DB": "********"},
        "tags": [{"key": "team", "value": "data"}],
    }
    assert secrets.reveal(request)["env"] == {"PREFECT_API_KEY": "pnu_x", "MY_TOKEN": "t", "DB": "p"}
    assert sorted(secrets.secret_values({"a": [SecretStr("s1")], "b": SecretStr("")})) == ["s1"]


def test_finished_is_defined_once() -> None:
    assert {state for state in InfrastructureState if InfrastructureStatus(state=state).finished} == FINISHED_STATES
    assert InfrastructureState.GONE in FINISHED_STATES
    assert InfrastructureState.RUNNING not in FINISHED_STATES


@pytest.mark.parametrize(
    ("count", "lines"),
    [(None, ("a", "b", "c")), (2, ("b", "c")), (5, ("a", "b", "c")), (0, ())],
)
def test_job_logs_keep_their_last_lines(count: int | None, lines: tuple[str, ...]) -> None:
    logs = JobLogs(lines=("a", "b", "c"), elsewhere="aws logs tail g")
    assert logs.last(count) == JobLogs(lines=lines, elsewhere="aws logs tail g")


def test_last_lines_keep_the_logs_end_within_a_limit() -> None:
    assert last_lines("a\nb\nc\n", lines=2) == "b\nc"
    assert last_lines("abcdef", limit=4) == "…def"
    assert last_lines("") == ""
    assert output_tail("key pnu_abcdef\nok", ["pnu_abcdef"], lines=1) == "ok"
    assert output_tail("key pnu_abcdef\nok", ["pnu_abcdef"]) == "key ********\nok"
