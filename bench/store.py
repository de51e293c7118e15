"""The embedded store at 1k, 100k and 1M runs: `push-pool runs ls` (`LocalStore.list_runs`, what the CLI calls) with
each kind of filter, and one tick of a pool, timed at each size; the target is that they stay flat (1M / 1k ≤ 2).
Measured in the same run: the listing query the store used before its indexes (the baseline), one tick's pruning
of 1,000 ended runs, and scheduling 1,000 runs in one `create_runs` against 1,000 `create_run` calls.

    .venv/bin/python -m bench.store [--quick]

Each store is generated inside SQLite (one INSERT ... SELECT over a recursive CTE) in a temporary directory that
lives for the run, so the 1M store (about 0.5 GiB) is built once. Its runs: four pools, runs at most a minute apart over
the last 25 days, nearly all ended (COMPLETED, some FAILED, CRASHED, CANCELLED) with two history rows each, and in
every store the same live ones: 20 RUNNING runs per pool (their infrastructure RUNNING in the in-memory backend)
and 100 SCHEDULED in the future. So every size gives a tick the same work: 20 status reads and nothing due.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.figures import Figure, run_alone
from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, InfrastructureState, InfrastructureStatus, StateType, WorkPool
from push_pools.orchestrators.local import LocalStore, NewRun
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick

SIZES = {"1k": 1_000, "100k": 100_000, "1M": 1_000_000}
QUICK_SIZES = {"1k": 1_000, "100k": 100_000}
REPEATS = 31
POOLS = 4
RUNNING_PER_POOL = 20
FUTURE_RUNS = 100
SPAN = timedelta(days=25)
"""The ended runs' due times: a minute apart, or closer to fit in this span (inside the default retention)."""
FLAT = 2.0
"""Target: a figure at the largest size is at most this many times the one at 1k."""

LISTINGS: dict[str, dict[str, object]] = {  # each finds its 50 runs at every size, so each size does the same work
    "runs ls": {},
    "runs ls --state RUNNING": {"states": [StateType.RUNNING]},
    "runs ls --pool P --state COMPLETED --state FAILED": {
        "pool_name": "pool-1",
        "states": [StateType.COMPLETED, StateType.FAILED],
    },
}
FORMER_LISTING = (
    "SELECT * FROM flow_runs NOT INDEXED WHERE (? IS NULL OR pool_name = ?) "
    "AND (json_array_length(?) = 0 OR state_type IN (SELECT value FROM json_each(?))) "
    "ORDER BY expected_start_time DESC LIMIT ?"
)
"""`list_runs`' query before schema 3: one statement for every filter, which none of the indexes of schema 2 could
serve (NOT INDEXED keeps the new ones out of it), so it read every run and sorted them."""

_ENDED = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count - 1)
INSERT INTO flow_runs (id, name, pool_name, deployment_id, deployment_name, flow_name, state_type, state_name,
    state_message, state_timestamp, expected_start_time, parameters, job_variables, infrastructure_pid, tags)
SELECT printf('%08x-0000-4000-8000-%012x', i, i), 'bench-' || i, 'pool-' || (i % :pools), 'deployment-' || (i % :pools),
    'bench-' || (i % :pools), 'bench',
    CASE WHEN i % 50 = 7 THEN 'FAILED' WHEN i % 97 = 5 THEN 'CRASHED' WHEN i % 199 = 3 THEN 'CANCELLED'
        ELSE 'COMPLETED' END,
    CASE WHEN i % 50 = 7 THEN 'Failed' WHEN i % 97 = 5 THEN 'Crashed' WHEN i % 199 = 3 THEN 'Cancelled'
        ELSE 'Completed' END,
    'Infrastructure exited with code 0', :start + i * :step + 45, :start + i * :step, '{"day": 1}', '{}',
    'memory::ended-' || i, '[]'
FROM n
"""
_HISTORY = """
INSERT INTO flow_run_states (flow_run_id, type, name, message, timestamp)
SELECT id, 'SCHEDULED', 'Scheduled', NULL, expected_start_time - 60 FROM flow_runs
UNION ALL SELECT id, state_type, state_name, state_message, state_timestamp FROM flow_runs
"""


def build(path: Path, runs: int, now: datetime) -> None:
    """A store of `runs` runs: the ended ones generated inside SQLite, the live ones through the store."""
    store = LocalStore(path)
    template = default_base_job_template("process")
    deployments = []
    for index in range(POOLS):
        pool = store.save_pool(WorkPool(name=f"pool-{index}", type="process", base_job_template=template))
        deployments.append(
            Deployment(id=f"deployment-{index}", name=f"bench-{index}", pool_name=pool.name, command="python -m flow")
        )
    store.save_deployments(deployments)
    ended = runs - POOLS * RUNNING_PER_POOL - FUTURE_RUNS
    step = min(60.0, SPAN.total_seconds() / ended)
    db = sqlite3.connect(path)
    with db:
        db.execute(
            _ENDED, {"count": ended, "pools": POOLS, "start": now.timestamp() - 3600 - ended * step, "step": step}
        )
        db.execute(_HISTORY)
    db.close()
    running = [NewRun(deployments[i % POOLS], now - timedelta(minutes=30)) for i in range(POOLS * RUNNING_PER_POOL)]
    later = [NewRun(deployments[i % POOLS], now + timedelta(hours=1, minutes=i)) for i in range(FUTURE_RUNS)]
    for run_id in store.create_runs(running, now=now - timedelta(minutes=30)):
        run = store.get_run(run_id)
        store.claim_run(run, now, None)
        store.record_submission(run, f"memory::{run_id}", None)
        store.set_state(run, StateType.RUNNING)
    store.create_runs(later, now=now)
    store.close()


def timed_ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def ticker(path: Path, home: Path) -> Callable[[], object]:
    """One tick of pool-0, repeatable: its RUNNING runs stay RUNNING, nothing is due, nothing old enough to prune
    (the pruning query still runs)."""
    settings = Settings(home=home, run_retention_seconds=365 * 24 * 3600)
    store = LocalStore(path)
    backend = InMemoryBackend()
    for run in store.runs_in_state("pool-0", StateType.RUNNING, 1000):
        assert run.infrastructure_pid is not None
        backend.statuses[run.infrastructure_pid] = InfrastructureStatus(state=InfrastructureState.RUNNING)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend}), settings)

    def one_tick() -> None:
        reads = backend.calls["status"]
        report = tick(dispatcher, "pool-0")
        if report.errors or report.outcomes or report.state_changes or report.pruned:
            raise RuntimeError(f"the benchmark's tick did more than reading: {report.summary()}")
        if backend.calls["status"] - reads != RUNNING_PER_POOL:
            raise RuntimeError("the benchmark's tick did not read every RUNNING run's infrastructure")

    return one_tick


def probes(path: Path, scratch: Path) -> dict[str, Callable[[], object]]:
    """What is timed on one store: each listing as the CLI asks for it (50 runs), and one tick."""
    store = LocalStore(path)
    timed: dict[str, Callable[[], object]] = {
        name: lambda filters=filters: store.list_runs(limit=50, **filters)  # type: ignore[misc]
        for name, filters in LISTINGS.items()
    }
    timed["one tick of a pool"] = ticker(path, scratch / "home")
    return timed


def former_listing(path: Path) -> Callable[[], object]:
    db = sqlite3.connect(path)
    return lambda: db.execute(FORMER_LISTING, (None, None, "[]", "[]", 50)).fetchall()


def interleaved(probes: dict[str, dict[str, Callable[[], object]]], repeats: int) -> dict[str, dict[str, float]]:
    """Median milliseconds of each probe of each store, timed in rounds across the stores, so that the machine's
    load (it is shared) falls on every size alike."""
    samples: dict[str, dict[str, list[float]]] = {label: {name: [] for name in p} for label, p in probes.items()}
    for _ in range(repeats):
        for label, of_store in probes.items():
            for name, probe in of_store.items():
                samples[label][name].append(timed_ms(probe))
    return {label: {name: statistics.median(s) for name, s in of.items()} for label, of in samples.items()}


def measure_pruning(path: Path) -> float:
    """Milliseconds of one tick's worth of pruning (1,000 ended runs and their history) on a store; it deletes."""
    store = LocalStore(path)
    cutoff = datetime.now(UTC) - timedelta(days=1)
    started = time.perf_counter()
    if store.prune_runs(cutoff, 1000) != 1000:
        raise RuntimeError("the store had fewer than 1,000 ended runs to prune")
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed * 1000


def measure_creation(scratch: Path, runs: int) -> tuple[float, float]:
    """Milliseconds to schedule `runs` runs one `create_run` at a time, and in one `create_runs`."""
    store = LocalStore(scratch / "create.db")
    pool = store.save_pool(WorkPool(name="p", type="process", base_job_template=default_base_job_template("process")))
    deployment = store.save_deployment(Deployment(id=str(uuid.uuid4()), name="d", pool_name=pool.name))
    now = datetime.now(UTC)
    started = time.perf_counter()
    for _ in range(runs):
        store.create_run(deployment, now, now=now)
    one_by_one = time.perf_counter() - started
    started = time.perf_counter()
    store.create_runs([NewRun(deployment, now) for _ in range(runs)], now=now)
    bulk = time.perf_counter() - started
    store.close()
    return one_by_one * 1000, bulk * 1000


def measure(quick: bool = False) -> list[Figure]:
    sizes = QUICK_SIZES if quick else SIZES
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as scratch_dir:
        scratch = Path(scratch_dir)
        paths = {label: scratch / f"store-{label}.db" for label in sizes}
        for label, runs in sizes.items():
            started = time.perf_counter()
            build(paths[label], runs, datetime.now(UTC))
            print(f"bench.store: built {label} runs in {time.perf_counter() - started:.1f} s", flush=True)
        results = interleaved({label: probes(path, scratch / label) for label, path in paths.items()}, REPEATS)
        baseline = "runs ls, former query (baseline)"
        for label, figure in interleaved(
            {label: {baseline: former_listing(p)} for label, p in paths.items()}, 3
        ).items():
            results[label].update(figure)
        first, last = next(iter(sizes)), list(sizes)[-1]
        for name in results[first]:
            for label in sizes:
                figures.append(Figure("store", f"{name} at {label} runs", results[label][name], "ms"))
            ratio = results[last][name] / results[first][name]
            target = "" if name == baseline else f"<= {FLAT:g}"
            figures.append(
                Figure("store", f"{name}: {last} / {first}", ratio, "x", target, ratio <= FLAT if target else None)
            )
        figures.append(
            Figure(
                "store",
                f"runs ls at {last}: former query / now",
                results[last][baseline] / results[last]["runs ls"],
                "x",
            )
        )
        pruning = statistics.median(measure_pruning(paths[last]) for _ in range(3))
        figures.append(Figure("store", f"prune 1,000 ended runs (one tick's most) at {last}", pruning, "ms"))
        one_by_one, bulk = measure_creation(scratch, 1000)
        figures.append(Figure("store", "schedule 1,000 runs: create_runs, one transaction", bulk, "ms"))
        figures.append(Figure("store", "schedule 1,000 runs: create_run each (baseline)", one_by_one, "ms"))
        figures.append(Figure("store", "schedule 1,000 runs: create_run each / create_runs", one_by_one / bulk, "x"))
    return figures


if __name__ == "__main__":
    run_alone(measure, "python -m bench.store", __doc__)
