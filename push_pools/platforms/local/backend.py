"""Local processes: runs a flow run's command on this machine, for trying push-pools with no cloud account.

Each run gets a directory under `PUSH_POOL_HOME/process/<idempotency key>/` holding its output log and, once it
ends, its exit code. The command runs under a small supervisor (`runner.py`, started as a script in isolated mode so
that it imports only the standard library and is up in tens of milliseconds) in its own session, so it outlives the
dispatcher that started it and its exit code can be read by a later one.

Secret values are masked in what is shown of the output: those of the requests this backend submitted, and the
orchestrator's credentials (`PREFECT_API_KEY`, `PREFECT_API_AUTH_STRING`) as set in this process's environment. A
later dispatcher whose credentials come from elsewhere (a Prefect profile) cannot know the values to mask.

- infrastructure id: `hostname:pid`, Prefect's format for process workers;
- submit is idempotent: the run directory is created atomically, so a second submit adopts the first process;
- status: the recorded exit code (0 → SUCCEEDED, otherwise FAILED), RUNNING while the supervisor lives; a failure's
  message is the cause when the command could not start ("cannot start 'prefect': No such file or directory"), else
  the last lines of its output (see `push_pools.backends.kit.evidence`);
- logs: the run's output file, for `push-pool runs logs`;
- cancel: SIGTERM to the process group, SIGKILL after the grace period; a process already gone is success.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator

from push_pools.backends.base import JobLogs, RenderedJob, RunContext, parse_job_configuration
from push_pools.backends.kit.evidence import executor_credentials, mask_secrets, output_tail
from push_pools.backends.kit.secrets import reveal, secret_env, secret_values
from push_pools.backends.kit.shapes import split_argv
from push_pools.errors import ConfigurationError, PermanentSubmissionError
from push_pools.models import InfrastructureRef, InfrastructureState, InfrastructureStatus
from push_pools.platforms.local import runner
from push_pools.platforms.local.runner import EXIT_CODE_FILE, FORWARDED_SIGNALS, START_ERROR_FILE
from push_pools.settings import Settings

LOG_FILE = "output.log"
KILL_WAIT_SECONDS = 5.0
PID_FILE = "pid"
TAIL_READ_BYTES = 64 * 1024
"""How much of the end of an output file a crash message reads: far more than its lines need, never the whole file."""
SUPERVISOR = (sys.executable, "-I", "-S", str(Path(runner.__file__)))
"""The runner as a script, not `-m push_pools...`: importing the package would cost about 0.5 s per run."""


class ProcessJobConfiguration(BaseModel):
    """The rendered job configuration of a `process` pool."""

    model_config = ConfigDict(extra="ignore")

    command: str | list[str]
    env: dict[str, str | None] = {}
    labels: dict[str, str] = {}
    name: str | None = None
    stream_output: bool = True
    working_dir: str | None = None

    @field_validator("command")
    @classmethod
    def _not_empty(cls, command: str | list[str]) -> str | list[str]:
        if not split_argv(command, "command"):
            raise ValueError("the command is empty")
        return command


def build_request(configuration: dict[str, Any], run: RunContext, settings: Settings | None = None) -> dict[str, Any]:
    """The process to start: argv, the env it adds to the executor's (None unsets a name), and its directory."""
    job = parse_job_configuration(ProcessJobConfiguration, configuration, "process")
    return {
        "argv": split_argv(job.command, "command") or [],
        "env": secret_env(job.env),
        "cwd": job.working_dir,
        "name": job.name or run.flow_run_name,
        "stream_output": job.stream_output,
    }


class ProcessBackend:
    """Starts, watches and stops local processes for a `process` pool."""

    pool_type: ClassVar[str] = "process"
    reports_infrastructure_events: ClassVar[bool] = False

    def __init__(self, runs_dir: Path, *, cancel_grace_seconds: float = 10.0) -> None:
        self.runs_dir = runs_dir
        self.cancel_grace_seconds = cancel_grace_seconds
        self.hostname = socket.gethostname()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._secrets: dict[int, list[str]] = {}

    def build_request(self, configuration: dict[str, Any], run: RunContext) -> dict[str, Any]:
        return build_request(configuration, run)

    def submit(self, configuration: dict[str, Any], run: RunContext) -> InfrastructureRef:
        built = build_request(configuration, run)
        request = reveal(built)
        if request["cwd"] is not None and not Path(request["cwd"]).is_dir():
            raise PermanentSubmissionError(f"working directory {request['cwd']!r} does not exist")
        run_dir = self.runs_dir / run.idempotency_key
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir()
        except FileExistsError:
            return InfrastructureRef(infrastructure_pid=self._wait_for_pid(run_dir), adopted=True)
        pid = self._spawn(request, run_dir)
        self._secrets[pid] = secret_values(built)
        self._pid_link(pid).unlink(missing_ok=True)
        self._pid_link(pid).symlink_to(run_dir)
        (run_dir / PID_FILE).write_text(str(pid))
        return InfrastructureRef(infrastructure_pid=f"{self.hostname}:{pid}")

    def status(self, infrastructure_pid: str) -> InfrastructureStatus:
        pid = self._local_pid(infrastructure_pid)
        self._reap(pid)
        exit_code = self._exit_code(pid)
        if exit_code is not None:
            return _finished(exit_code, self._failure_evidence(pid) if exit_code else None)
        if _alive(pid):
            return InfrastructureStatus(state=InfrastructureState.RUNNING)
        return InfrastructureStatus(
            state=InfrastructureState.GONE, message=f"process {pid} ended without recording an exit code"
        )

    def cancel(self, infrastructure_pid: str) -> None:
        pid = self._local_pid(infrastructure_pid)
        if not _signal_group(pid, signal.SIGTERM):
            return
        if self._wait_for_end(pid, self.cancel_grace_seconds):
            return
        _signal_group(pid, signal.SIGKILL)
        self._wait_for_end(pid, KILL_WAIT_SECONDS)

    def _wait_for_end(self, pid: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            self._reap(pid)
            if self._exit_code(pid) is not None or not _alive(pid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def sweep(self, now: datetime) -> int:
        return 0

    def log_path(self, infrastructure_pid: str) -> Path | None:
        """Where the process's output went, if it ran here."""
        link = self._pid_link(self._local_pid(infrastructure_pid))
        return link.resolve() / LOG_FILE if link.exists() else None

    def logs(self, infrastructure_pid: str, tail: int | None = None, job: RenderedJob | None = None) -> JobLogs:
        """The run's output as written so far, secrets masked; a ConfigurationError if it did not run here."""
        pid = self._local_pid(infrastructure_pid)
        path = self.log_path(infrastructure_pid)
        if path is None or not path.exists():
            raise ConfigurationError(f"process {pid} has no output file under {self.runs_dir}")
        text = mask_secrets(path.read_bytes().decode(errors="replace"), self._known_secrets(pid))
        return JobLogs(lines=tuple(text.splitlines())).last(tail)

    def _failure_evidence(self, pid: int) -> str | None:
        """Why the run failed, as far as its directory tells: the start error, else its output's last lines."""
        run_dir = self._pid_link(pid)
        with contextlib.suppress(OSError):
            return (run_dir / START_ERROR_FILE).read_text()
        try:
            with (run_dir / LOG_FILE).open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - TAIL_READ_BYTES))
                text = log.read().decode(errors="replace")
        except OSError:
            return None
        tail = output_tail(text, self._known_secrets(pid))
        return f"last output lines:\n{tail}" if tail else None

    def _known_secrets(self, pid: int) -> list[str]:
        return [*self._secrets.get(pid, ()), *executor_credentials()]

    def _spawn(self, request: dict[str, Any], run_dir: Path) -> int:
        env = {**os.environ, **{k: v for k, v in request["env"].items() if v is not None}}
        for name in (k for k, v in request["env"].items() if v is None):
            env.pop(name, None)
        supervisor = [*SUPERVISOR, str(run_dir), "--"]
        log = (run_dir / LOG_FILE).open("ab")
        try:
            child = subprocess.Popen(
                supervisor + request["argv"],
                env=env,
                cwd=request["cwd"],
                stdin=subprocess.DEVNULL,
                stdout=log if request["stream_output"] else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_block_forwarded_signals,
            )
        except OSError as exc:
            raise PermanentSubmissionError(f"cannot start {request['argv'][0]!r}: {exc.strerror}") from exc
        finally:
            log.close()
        self._children[child.pid] = child
        return child.pid

    def _wait_for_pid(self, run_dir: Path) -> str:
        """Another submit of this run made the directory; its pid file follows within moments."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                return f"{self.hostname}:{int((run_dir / PID_FILE).read_text())}"
            time.sleep(0.01)
        raise PermanentSubmissionError(f"{run_dir} exists but records no process; remove it to submit again")

    def _local_pid(self, infrastructure_pid: str) -> int:
        hostname, _, pid = infrastructure_pid.rpartition(":")
        if not pid.isdigit():
            raise ConfigurationError(f"{infrastructure_pid!r} is not a process infrastructure id (hostname:pid)")
        if hostname and hostname != self.hostname:
            raise ConfigurationError(f"process {pid} runs on {hostname}, not on this host ({self.hostname})")
        return int(pid)

    def _pid_link(self, pid: int) -> Path:
        return self.runs_dir / f"pid-{pid}"

    def _exit_code(self, pid: int) -> int | None:
        try:
            return int((self._pid_link(pid) / EXIT_CODE_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _reap(self, pid: int) -> None:
        """Collect a finished child of ours, or it lingers as a zombie that looks alive."""
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            del self._children[pid]


def from_settings(settings: Settings) -> ProcessBackend:
    return ProcessBackend(settings.home / "process", cancel_grace_seconds=settings.process_cancel_grace_seconds)


def _block_forwarded_signals() -> None:
    """In the supervisor, before exec: hold SIGTERM until it can pass it on, so an early cancel is not lost."""
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)


def _finished(exit_code: int, evidence: str | None = None) -> InfrastructureStatus:
    if exit_code == 0:
        return InfrastructureStatus(state=InfrastructureState.SUCCEEDED, exit_code=0)
    if exit_code < 0:
        reason = f"killed by {signal.Signals(-exit_code).name}"
        message = f"{reason}; {evidence}" if evidence else reason
        return InfrastructureStatus(state=InfrastructureState.FAILED, exit_code=exit_code, message=message)
    return InfrastructureStatus(state=InfrastructureState.FAILED, exit_code=exit_code, message=evidence)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def _signal_group(pid: int, sig: signal.Signals) -> bool:
    """Signal the supervisor's process group; False when it is already gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True
