"""What both sides of a comparison share: one real Prefect server that provides the runs, Prefect's own default base
job template for the worker type, and Prefect's worker in its own process (`prefect_worker_driver`).

The Prefect server is 3.8.8 from `.venv-prefect` (`tests.e2e.prefect.server`); Prefect's workers are 3.6.29 with
their integrations from `.venv-prefect-workers`, talking to it as any client of an older release does.

The server keeps its database in memory (SQLite through one connection) unless `file_database` is asked for. With
the default file database, a hundred runs submitted at once by Prefect's worker make the server's writes wait on
SQLite's lock ("database is locked" in its log) for tens of seconds (100 runs took the worker 38 to 73 s, against
about 10 s in memory), so a timing would measure those waits rather than the worker. In memory, the server's work is
what is timed, for both sides.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from push_pools.backends.base import Backend
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.orchestrators.prefect import PrefectOrchestrator
from push_pools.orchestrators.prefect.api import PrefectApi
from push_pools.orchestrators.prefect.schema import prefect_pool_type
from push_pools.settings import Settings
from push_pools.tick import tick
from tests.e2e.prefect.server import REPO, PrefectServer
from tests.e2e.prefect.transport import RecordingTransport

WORKERS_PYTHON = REPO / ".venv-prefect-workers" / "bin" / "python"
DRIVER = Path(__file__).with_name("prefect_worker_driver.py")
IN_MEMORY_DATABASE = "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true&check_same_thread=false"
WORKER_START_TIMEOUT = 180.0
POLL_TIMEOUT = 600.0
_CREATORS = 4


def require_workers_venv() -> None:
    if not WORKERS_PYTHON.exists():
        raise RuntimeError(
            f"{WORKERS_PYTHON.parent.parent} is missing: build it with `make .venv-prefect-workers/bin/python` "
            "(make bench does)"
        )


@contextmanager
def prefect_server(work: Path, *, file_database: bool = False) -> Iterator[PrefectServer]:
    """A Prefect server for the whole benchmark, stopped on the way out."""
    server = PrefectServer(work / "prefect-server")
    database = {} if file_database else {"PREFECT_SERVER_DATABASE_CONNECTION_URL": IN_MEMORY_DATABASE}
    with environment(database):
        server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (the Prefect server harness and boto3 read os.environ)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def prefect_default_template(worker_type: str) -> dict[str, Any]:
    """The default base job template of Prefect's own worker of this type (what `prefect work-pool create` gives)."""
    require_workers_venv()
    code = (
        "import json, sys\n"
        "from prefect.workers.base import BaseWorker\n"
        "from prefect.plugins import load_prefect_collections\n"
        "load_prefect_collections()\n"
        "worker = BaseWorker.get_worker_class_from_type(sys.argv[1])\n"
        "print(json.dumps(worker.get_default_base_job_template()))\n"
    )
    result = subprocess.run(
        [str(WORKERS_PYTHON), "-c", code, worker_type], capture_output=True, text=True, timeout=120, check=True
    )
    template: dict[str, Any] = json.loads(result.stdout)
    return template


@dataclass(frozen=True)
class Outcome:
    """Where a deployment's runs ended up, read from Prefect."""

    runs: int
    submitted: int
    """Runs with an infrastructure id."""
    failed: int
    """Runs in CRASHED or FAILED: what the executor gave up on."""
    states: Counter[str]

    @property
    def unsubmitted(self) -> int:
        """Neither submitted nor failed: left SCHEDULED, or PENDING with no infrastructure."""
        return self.runs - self.submitted - self.failed


class Runs:
    """Pools, deployments and runs on the Prefect server, made through its REST API as Prefect's own clients do."""

    def __init__(self, api: PrefectApi) -> None:
        self.api = api

    def pool(self, name: str, our_type: str, template: dict[str, Any], *, push: bool) -> str:
        """A pool with this base job template: a push pool (`ecs:push`...) for push-pools, else a worker pool."""
        pool_type = prefect_pool_type(our_type, cloud=False) if push else prefect_pool_type(our_type, cloud=True)
        self.api.post("work_pools/", {"name": name, "type": pool_type, "base_job_template": template})
        return name

    def deployment(self, pool_name: str) -> str:
        flow = self.api.post("flows/", {"name": f"bench-{pool_name}"})
        body = {"name": "bench", "flow_id": flow["id"], "work_pool_name": pool_name, "entrypoint": "flows.py:bench"}
        return str(self.api.post("deployments/", body)["id"])

    def schedule(self, deployment_id: str, count: int) -> list[str]:
        """`count` runs of the deployment, due a second ago."""
        due = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        body = {"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": due}}}

        def create(_: int) -> str:
            return str(self.api.post(f"deployments/{deployment_id}/create_flow_run", body)["id"])

        with ThreadPoolExecutor(max_workers=_CREATORS) as pool:
            return list(pool.map(create, range(count)))

    def outcome(self, run_ids: list[str]) -> Outcome:
        runs: list[dict[str, Any]] = []
        while True:
            page = self.api.post(
                "flow_runs/filter", {"flow_runs": {"id": {"any_": run_ids}}, "limit": 200, "offset": len(runs)}
            )
            runs += page
            if len(page) < 200:
                break
        states = Counter(str(run.get("state_type")) for run in runs)
        failed = states["CRASHED"] + states["FAILED"]
        submitted = sum(1 for run in runs if run.get("infrastructure_pid") and run.get("state_type") != "CRASHED")
        return Outcome(len(runs), submitted, failed, states)


class PrefectWorker:
    """Prefect's own worker of one type for one pool, in its own process, polled on demand."""

    def __init__(self, worker_type: str, pool: str, env: Mapping[str, str], log_path: Path) -> None:
        require_workers_venv()
        self._log: IO[bytes] = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(WORKERS_PYTHON), str(DRIVER), worker_type, pool],
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,  # stopped as a group, with anything it started
        )
        self.log_path = log_path
        self.prefect_requests: Counter[str] = Counter()
        """Requests to the Prefect API in the polls so far (`calls`), and those answered 503 (`busy`)."""
        self._read(WORKER_START_TIMEOUT)

    def poll(self) -> dict[str, float]:
        """One iteration of the worker's loop; returns when the runs it took are submitted."""
        if self.process.stdin is None:
            raise RuntimeError("the worker has no stdin")
        self.process.stdin.write("poll\n")
        self.process.stdin.flush()
        return self._read(POLL_TIMEOUT)

    def submit_due(self, max_rounds: int) -> tuple[float, int]:
        """Polls back to back until one finds no run; the seconds the polls that found runs took, and their number.
        The Prefect requests of the polls that found runs are added to `prefect_requests`."""
        seconds, polls = 0.0, 0
        while polls < max_rounds:
            answer = self.poll()
            if not answer["runs"]:
                break
            self.prefect_requests.update(calls=int(answer["prefect_calls"]), busy=int(answer["prefect_busy"]))
            seconds += answer["seconds"]
            polls += 1
        return seconds, polls

    def _read(self, timeout: float) -> dict[str, float]:
        if self.process.stdout is None:
            raise RuntimeError("the worker has no stdout")
        # the driver answers each command with one line, so nothing is left in the pipe's buffer between answers
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError(f"Prefect's worker stopped answering; see {self.log_path}")
        answer: dict[str, float] = json.loads(line)
        return answer

    def stop(self) -> None:
        process = self.process
        if process.poll() is None:
            try:
                if process.stdin is not None:
                    process.stdin.write("quit\n")
                    process.stdin.close()
                process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> PrefectWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PushPoolsInstance:
    """One push-pools function instance serving one Prefect pool: its own Prefect connection, its backend (with its
    own cloud clients) and dispatcher, with push-pools' default settings. It submits due runs with `tick`, as the
    function's timer does."""

    def __init__(self, server: PrefectServer, pool: str, pool_type: str, backend: Backend, settings: Settings) -> None:
        self.pool = pool
        self._transport = RecordingTransport()
        api = PrefectApi(server.connection(), transport=self._transport)
        self.orchestrator = PrefectOrchestrator(api, served_pools=[pool])
        self.dispatcher = Dispatcher(self.orchestrator, Backends(settings, {pool_type: backend}), settings)
        self.prefect_requests: Counter[str] = Counter()
        """Requests to the Prefect API in the ticks so far (`calls`), and those answered 503 (`busy`), counted as
        the server received them."""

    def submit_due(self, max_rounds: int) -> tuple[float, int]:
        """Ticks back to back while runs are due (Prefect is asked whether any is left: one more tick would also read
        and sweep the cloud); the seconds the ticks took, and their number (at least one). The Prefect requests of
        the ticks (not of that question) are added to `prefect_requests`."""
        seconds, ticks = 0.0, 0
        while ticks < max_rounds:
            started = time.monotonic()
            self._transport.clear()
            tick(self.dispatcher, self.pool)
            seconds += time.monotonic() - started
            ticks += 1
            calls, busy = self._transport.calls.total(), self._transport.busy.total()
            self.prefect_requests.update(calls=calls, busy=busy)
            if not self.orchestrator.scheduled_runs(self.pool, datetime.now(UTC), 1):
                break
        return seconds, ticks

    def stop(self) -> None:
        self.orchestrator.close()

    def __enter__(self) -> PushPoolsInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
