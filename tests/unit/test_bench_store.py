"""bench.store's generated stores hold what its docstring says, and its probes run on them (nothing is timed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench import store as bench_store
from push_pools.models import StateType
from push_pools.orchestrators.local import LocalStore


def test_a_generated_store_has_its_runs_and_a_tick_that_only_reads(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    bench_store.build(path, 1000, datetime.now(UTC))
    store = LocalStore(path)
    db = store._db()
    by_state = dict(db.execute("SELECT state_type, COUNT(*) FROM flow_runs GROUP BY state_type").fetchall())
    assert sum(by_state.values()) == 1000
    assert by_state["RUNNING"] == bench_store.POOLS * bench_store.RUNNING_PER_POOL
    assert by_state["SCHEDULED"] == bench_store.FUTURE_RUNS
    assert {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} <= set(by_state)
    assert (
        db.execute("SELECT COUNT(*) FROM flow_run_states").fetchone()[0] == 2 * 820 + 3 * 80 + 100
    )  # ended: 2 each; RUNNING: 3; SCHEDULED: 1
    running = store.runs_in_state("pool-0", StateType.RUNNING, 100)
    assert len(running) == bench_store.RUNNING_PER_POOL
    assert all(run.infrastructure_pid for run in running)
    for filters in bench_store.LISTINGS.values():
        assert len(store.list_runs(limit=50, **filters)) == 50  # type: ignore[arg-type]
    for probe in bench_store.probes(path, tmp_path / "home").values():
        probe()  # the tick raises unless it only read its pool's RUNNING runs
    store.close()
