"""The `process` backend with real subprocesses: exit codes, env, working directory, idempotency, cancellation,
and a status read by a backend other than the one that started the process."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from push_pools.backends.base import JobLogs, RunContext
from push_pools.errors import ConfigurationError, PermanentSubmissionError, TemplateError
from push_pools.models import InfrastructureState, InfrastructureStatus
from push_pools.platforms.local.backend import ProcessBackend, build_request


def context(key: str = "run-1") -> RunContext:
    return RunContext(flow_run_id="r", flow_run_name="run-name", pool_name="local", idempotency_key=key)


def python(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def wait_until_finished(backend: ProcessBackend, pid: str, timeout: float = 20) -> InfrastructureStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.status(pid)
        if status.state not in (InfrastructureState.RUNNING, InfrastructureState.STARTING):
            return status
        time.sleep(0.02)
    raise AssertionError(f"{pid} still running after {timeout}s")


@pytest.fixture
def backend(tmp_path: Path) -> ProcessBackend:
    return ProcessBackend(tmp_path / "process", cancel_grace_seconds=2)


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ({"command": "echo 'a b' c"}, {"argv": ["echo", "a b", "c"], "env": {}, "cwd": None, "name": "run-name"}),
        (
            {"command": ["echo", "x"], "env": {"A": "1", "B": None}},
            {"argv": ["echo", "x"], "env": {"A": "1", "B": None}},
        ),
        ({"command": "true", "working_dir": "/tmp", "name": "custom"}, {"cwd": "/tmp", "name": "custom"}),
    ],
)
def test_build_request(configuration: dict[str, Any], expected: dict[str, Any]) -> None:
    request = build_request(configuration, context())
    assert {key: request[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({}, "command: Field required"),
        ({"command": ""}, "the command is empty"),
        ({"command": "   "}, "the command is empty"),
        ({"command": 42}, "command"),
        ({"command": "true", "env": {"A": 1}}, "env.A"),
        ({"command": "true", "env": "A=1"}, "env"),
        ({"command": "echo 'unbalanced"}, "No closing quotation"),
    ],
)
def test_build_request_refuses_bad_configurations(configuration: dict[str, Any], message: str) -> None:
    with pytest.raises((TemplateError, ValueError), match=message):
        build_request(configuration, context())


def test_exit_codes_env_and_working_directory(backend: ProcessBackend, tmp_path: Path) -> None:
    code = "import os, sys; print(os.environ['GREETING'], os.getcwd()); sys.exit(int(os.environ['CODE']))"
    ok = backend.submit(
        {"command": python(code), "env": {"GREETING": "hi", "CODE": "0"}, "working_dir": str(tmp_path)}, context("ok")
    )
    bad = backend.submit({"command": python(code), "env": {"GREETING": "hi", "CODE": "7"}}, context("bad"))
    assert wait_until_finished(backend, ok.infrastructure_pid) == InfrastructureStatus(state="SUCCEEDED", exit_code=0)
    failed = wait_until_finished(backend, bad.infrastructure_pid)
    assert failed == InfrastructureStatus(state="FAILED", exit_code=7, message=f"last output lines:\nhi {os.getcwd()}")
    log = backend.log_path(ok.infrastructure_pid)
    assert log is not None
    assert log.read_text().strip() == f"hi {tmp_path}"


def test_env_none_unsets_an_inherited_variable(
    backend: ProcessBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INHERITED", "yes")
    ref = backend.submit(
        {"command": python("import os; print(os.environ.get('INHERITED', 'unset'))"), "env": {"INHERITED": None}},
        context(),
    )
    wait_until_finished(backend, ref.infrastructure_pid)
    log = backend.log_path(ref.infrastructure_pid)
    assert log is not None
    assert log.read_text().strip() == "unset"


def test_submit_is_idempotent_per_key(backend: ProcessBackend) -> None:
    first = backend.submit({"command": "sleep 5"}, context())
    second = backend.submit({"command": "sleep 5"}, context())
    assert (second.infrastructure_pid, second.adopted) == (first.infrastructure_pid, True)
    backend.cancel(first.infrastructure_pid)


def test_another_backend_reads_the_outcome(backend: ProcessBackend, tmp_path: Path) -> None:
    ref = backend.submit({"command": python("import sys; sys.exit(3)")}, context())
    wait_until_finished(backend, ref.infrastructure_pid)
    later = ProcessBackend(tmp_path / "process")
    assert later.status(ref.infrastructure_pid) == InfrastructureStatus(state="FAILED", exit_code=3)


def wait_for_output(backend: ProcessBackend, pid: str, text: str) -> None:
    log = backend.log_path(pid)
    deadline = time.monotonic() + 10
    while log is not None and text not in log.read_text():
        assert time.monotonic() < deadline, f"{text!r} never appeared in {log}"
        time.sleep(0.02)


def test_cancel_terminates_then_counts_a_gone_process_as_success(backend: ProcessBackend) -> None:
    ref = backend.submit({"command": python("import time; print('ready', flush=True); time.sleep(60)")}, context())
    wait_for_output(backend, ref.infrastructure_pid, "ready")
    assert backend.status(ref.infrastructure_pid).state is InfrastructureState.RUNNING
    backend.cancel(ref.infrastructure_pid)
    status = backend.status(ref.infrastructure_pid)
    assert status.state is InfrastructureState.FAILED
    assert status.message == "killed by SIGTERM; last output lines:\nready"
    backend.cancel(ref.infrastructure_pid)  # already gone: no error


def test_cancel_right_after_submit_is_not_lost(backend: ProcessBackend) -> None:
    """A SIGTERM that arrives before the supervisor is ready waits for it, and still stops the command."""
    ref = backend.submit({"command": "sleep 60"}, context())
    backend.cancel(ref.infrastructure_pid)
    status = wait_until_finished(backend, ref.infrastructure_pid)
    assert (status.state, status.message) == (InfrastructureState.FAILED, "killed by SIGTERM")


def test_cancel_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    backend = ProcessBackend(tmp_path / "process", cancel_grace_seconds=0.3)
    stubborn = python(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    ref = backend.submit({"command": stubborn}, context())
    wait_for_output(backend, ref.infrastructure_pid, "ready")
    backend.cancel(ref.infrastructure_pid)
    assert backend.status(ref.infrastructure_pid).state is InfrastructureState.GONE


def test_a_missing_command_fails_with_exit_code_127_and_its_cause(backend: ProcessBackend) -> None:
    ref = backend.submit({"command": "no-such-command-push-pools"}, context())
    status = wait_until_finished(backend, ref.infrastructure_pid)
    cause = "cannot start 'no-such-command-push-pools': No such file or directory"
    assert (status.state, status.exit_code, status.message) == (InfrastructureState.FAILED, 127, cause)
    assert ProcessBackend(backend.runs_dir).status(ref.infrastructure_pid).message == cause


def test_a_failure_shows_the_last_lines_of_its_output_bounded_and_masked(
    backend: ProcessBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_executor_key")
    code = (
        "import os, sys\n"
        "for i in range(100): print('line', i, 'x' * 200)\n"
        "print('key', os.environ['PREFECT_API_KEY'], 'auth', os.environ['PREFECT_API_AUTH_STRING'])\n"
        "sys.exit('boom')"
    )
    ref = backend.submit({"command": python(code), "env": {"PREFECT_API_AUTH_STRING": "user:s3cret"}}, context())
    status = wait_until_finished(backend, ref.infrastructure_pid)
    message = status.message or ""
    assert message.startswith("last output lines:\n…")
    assert message.endswith("line 99 " + "x" * 200 + "\nkey ******** auth ********\nboom")
    assert len(message) <= len("last output lines:\n") + 2048
    assert "pnu_executor_key" not in message
    assert "s3cret" not in message
    later = ProcessBackend(backend.runs_dir).status(ref.infrastructure_pid).message or ""
    assert "pnu_executor_key" not in later, "the executor's own credentials are masked by any dispatcher"


def test_logs_are_the_output_so_far_masked_and_tailed(backend: ProcessBackend) -> None:
    code = "import os\nfor i in range(5): print('line', i)\nprint(os.environ['PREFECT_API_KEY'])"
    ref = backend.submit({"command": python(code), "env": {"PREFECT_API_KEY": "pnu_run_key"}}, context())
    wait_until_finished(backend, ref.infrastructure_pid)
    assert backend.logs(ref.infrastructure_pid) == JobLogs(lines=(*(f"line {i}" for i in range(5)), "********"))
    assert backend.logs(ref.infrastructure_pid, tail=2).lines == ("line 4", "********")
    assert backend.logs(ref.infrastructure_pid, tail=0).lines == ()
    with pytest.raises(ConfigurationError, match="has no output file"):
        backend.logs(f"{backend.hostname}:999999999")


def test_a_missing_working_directory_is_permanent(backend: ProcessBackend, tmp_path: Path) -> None:
    with pytest.raises(PermanentSubmissionError, match=r"working directory .* does not exist"):
        backend.submit({"command": "true", "working_dir": str(tmp_path / "nope")}, context())


@pytest.mark.parametrize(
    ("pid", "message"), [("nonsense", "not a process infrastructure id"), ("elsewhere:123", "runs on elsewhere")]
)
def test_foreign_infrastructure_ids_are_refused(backend: ProcessBackend, pid: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        backend.status(pid)
