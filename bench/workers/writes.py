"""Write calls per run, side by side, for clouds whose local fake counts every call by method (Cloud Run, ACI).

Both sides get a pool with Prefect's default base job template of the worker type (image and location as pool
defaults), a deployment, and runs due at once, from one Prefect server (see `world`): push-pools through the Prefect
orchestrator (`<type>:push` pool, `tick`), Prefect's worker through its own polling loop in its own process. The
sides take turns, so the fake's counters say who called what.

A round makes runs due, lets the side submit them (calls counted "at submission", until the poll or tick returns),
then lets it finish with them (calls counted "over the run's life"): the fake now ends every container at once, and
the round waits until the side has removed what it must remove for each run. Prefect's worker watches each container to
its end, then deletes what it created. push-pools reads the state of its runs and sweeps in later ticks: the bench
ticks again (once at least) until its per-run resources are gone (ACI's container groups, with no retention period
here; Cloud Run jobs are reused by design, so nothing per run is left to remove).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.figures import Figure
from bench.workers.world import PrefectWorker, PushPoolsInstance, Runs
from push_pools.backends.base import Backend
from push_pools.settings import Settings
from tests.e2e.prefect.server import PrefectServer

BENCH = "workers"
WORKER, OURS = "Prefect worker", "push-pools"
WARM_RUNS = 10
MAX_ROUNDS = 10
CLEANUP_TIMEOUT = 90.0


class Submitter(Protocol):
    def submit_due(self, max_rounds: int) -> tuple[float, int]: ...

    def stop(self) -> None: ...


@dataclass
class Cloud:
    """One cloud's fake and how each side reaches it."""

    name: str
    """As figures name it: "cloud-run", "aci"."""
    our_type: str
    worker_type: str
    template: dict[str, Any]
    calls: Callable[[], Counter[str]]
    """The fake's calls so far, by method."""
    write_methods: frozenset[str]
    leftovers: Callable[[str], int]
    """How many resources a side made for its runs (jobs, container groups) it has yet to remove from the fake."""
    finish_all: Callable[[], None]
    """Let every container that is running end, successfully."""
    backend: Callable[[Settings], Backend]
    """A new push-pools backend (new clients) for one instance."""
    worker_env: dict[str, str]


@dataclass
class RoundResult:
    runs: int
    seconds: float
    at_submission: Counter[str]
    over_life: Counter[str]

    def writes(self, cloud: Cloud, *, life: bool = False) -> float:
        calls = self.over_life if life else self.at_submission
        return sum(n for method, n in calls.items() if method in cloud.write_methods) / self.runs

    def all_calls(self) -> float:
        return sum(self.over_life.values()) / self.runs


@contextmanager
def finishing(cloud: Cloud, every: float = 0.2) -> Iterator[None]:
    """Containers end as soon as they start, for the whole block."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            cloud.finish_all()

    thread = threading.Thread(target=loop, name=f"{cloud.name}-finisher", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def compare(server: PrefectServer, runs: Runs, cloud: Cloud, work: Path) -> list[Figure]:
    results = {side: measure_side(server, runs, cloud, work, side) for side in (OURS, WORKER)}
    return figures(cloud, results)


def measure_side(server: PrefectServer, runs: Runs, cloud: Cloud, work: Path, side: str) -> dict[str, RoundResult]:
    name = f"{'push' if side == OURS else 'worker'}-{cloud.name}"
    pool = runs.pool(name, cloud.our_type, cloud.template, push=side == OURS)
    deployment = runs.deployment(pool)
    settings = Settings(home=work / "push-pools", orchestrator="prefect", prefect_work_pools=[pool])
    submitter: Submitter
    if side == WORKER:
        submitter = PrefectWorker(cloud.worker_type, pool, cloud.worker_env, work / f"{pool}.log")
    else:
        submitter = PushPoolsInstance(server, pool, cloud.our_type, cloud.backend(settings), settings)
    try:
        first = one_round(runs, cloud, submitter, deployment, 1, side)
        warm = one_round(runs, cloud, submitter, deployment, WARM_RUNS, side)
    finally:
        submitter.stop()
    return {"first": first, "warm": warm}


def one_round(runs: Runs, cloud: Cloud, submitter: Submitter, deployment: str, count: int, side: str) -> RoundResult:
    runs.schedule(deployment, count)
    before = cloud.calls()
    seconds, _ = submitter.submit_due(MAX_ROUNDS)
    submitted = cloud.calls()
    with finishing(cloud):  # containers end only now, so nothing is removed before the submission is counted
        settle(cloud, submitter, side)
    return RoundResult(count, seconds, submitted - before, cloud.calls() - before)


def settle(cloud: Cloud, submitter: Submitter, side: str) -> None:
    """Until the side has removed what it made for its runs: the worker does it alone; push-pools in its ticks."""
    deadline = time.monotonic() + CLEANUP_TIMEOUT
    ticked = False
    while (not ticked or cloud.leftovers(side)) and time.monotonic() < deadline:
        time.sleep(0.5)  # the finisher ends the containers meanwhile (push-pools' tick reads them afterwards)
        if side == OURS:
            submitter.submit_due(1)
        ticked = True


def figures(cloud: Cloud, results: dict[str, dict[str, RoundResult]]) -> list[Figure]:
    rows = []
    for side in (OURS, WORKER):
        first, warm = results[side]["first"], results[side]["warm"]
        label = f"{cloud.name}, {side}"
        warm_writes = Figure(BENCH, f"{label}: write calls per run at submission, warm (mean of {WARM_RUNS})",
                             warm.writes(cloud), "calls/run")  # fmt: skip
        if side == OURS:
            warm_writes = dataclasses.replace(warm_writes, target="1", met=warm_writes.value == 1)
        warm_life = warm.writes(cloud, life=True)
        rows += [
            Figure(BENCH, f"{label}: write calls at submission, first run", first.writes(cloud), "calls/run"),
            warm_writes,
            Figure(BENCH, f"{label}: write calls per run over its life, warm", warm_life, "calls/run"),
            Figure(BENCH, f"{label}: all calls per run over its life, warm", warm.all_calls(), "calls/run"),
            Figure(BENCH, f"{label}: time to submit {WARM_RUNS} due runs, warm", warm.seconds, "s"),
        ]
    ours, worker = results[OURS]["warm"], results[WORKER]["warm"]
    for life, moment in ((False, "at submission"), (True, "over the run's life")):
        if ours.writes(cloud, life=life):
            ratio = worker.writes(cloud, life=life) / ours.writes(cloud, life=life)
            rows.append(Figure(BENCH, f"{cloud.name}: write calls per run {moment}: worker / push-pools", ratio, "x"))
    return rows
