"""Dispatcher overhead: 1,000 due runs through claim → render → submit → record, against the in-memory backend
on the embedded store. Prints runs/s and per-run p50/p99, rendering alone, and the store's bare claim as the
baseline measured in the same run.

    .venv/bin/python -m bench.dispatch [--runs 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.jobs import prepare_job
from push_pools.models import Deployment, FlowRun, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick

JOB_VARIABLES = {"env": {"STAGE": "bench", "REGION": "eu-west-1"}, "working_dir": "/tmp"}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


LATENCY_SECONDS = 0.02
"""A cloud API call's round trip, for the tick's concurrency figure."""


def slow_cloud(operation: str, _run: object) -> None:
    if operation == "submit":
        time.sleep(LATENCY_SECONDS)


def setup(
    home: Path, runs: int, backend: InMemoryBackend | None = None
) -> tuple[LocalStore, Dispatcher, list[FlowRun], WorkPool, Deployment]:
    settings = Settings(home=home, tick_batch_size=runs)
    store = LocalStore(settings.store_path)
    pool = store.save_pool(
        WorkPool(name="bench", type="process", base_job_template=default_base_job_template("process"))
    )
    deployment = store.save_deployment(
        Deployment(
            id=str(uuid.uuid4()),
            name="bench",
            pool_name=pool.name,
            command="python -m flow",
            job_variables=JOB_VARIABLES,
        )
    )
    now = datetime.now(UTC)
    created = [store.create_run(deployment, now, job_variables={"env": {"N": str(i)}}, now=now) for i in range(runs)]
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend or InMemoryBackend()}), settings)
    return store, dispatcher, created, pool, deployment


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def one_repeat(runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        store, dispatcher, created, pool, deployment = setup(Path(scratch) / "a", runs)
        per_run = [timed(lambda run=run: dispatcher.submit(run, pool)) for run in created]
        environment = store.run_environment(created[0])
        rendering = [timed(lambda: prepare_job(pool, deployment, created[0], environment)) for _ in range(runs)]
        store.close()

        store, _, created, _, _ = setup(Path(scratch) / "b", runs)
        now = datetime.now(UTC)
        claims = [timed(lambda run=run: store.claim_run(run, now, None)) for run in created]
        store.close()

        store, dispatcher, created, _, _ = setup(Path(scratch) / "c", runs)
        tick_seconds = timed(lambda: tick(dispatcher))
        store.close()

        slow_runs = max(1, runs // 5)
        store, dispatcher, created, pool, _ = setup(Path(scratch) / "d", slow_runs, InMemoryBackend(fail=slow_cloud))
        slow_sequential = timed(lambda: [dispatcher.submit(run, pool) for run in created[: slow_runs // 2]])
        slow_tick = timed(lambda: tick(dispatcher))
        store.close()
    return {
        "per_run_p50_ms": statistics.median(per_run) * 1000,
        "per_run_p99_ms": percentile(per_run, 0.99) * 1000,
        "sequential_runs_per_s": runs / sum(per_run),
        "tick_runs_per_s": runs / tick_seconds,
        "slow_sequential_runs_per_s": (slow_runs // 2) / slow_sequential,
        "slow_tick_runs_per_s": (slow_runs - slow_runs // 2) / slow_tick,
        "render_p50_ms": statistics.median(rendering) * 1000,
        "claim_p50_ms": statistics.median(claims) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    repeats = [one_repeat(args.runs) for _ in range(args.repeats)]
    f = {key: statistics.median(r[key] for r in repeats) for key in repeats[0]}
    print(f"bench.dispatch: {args.runs} due runs, median of {args.repeats} repeats")
    print(
        "  per run (claim → render → submit → record): "
        f"p50 {f['per_run_p50_ms']:.3f} ms, p99 {f['per_run_p99_ms']:.3f} ms"
    )
    print(
        f"  sequential: {f['sequential_runs_per_s']:.0f} runs/s; "
        f"one tick (8 threads): {f['tick_runs_per_s']:.0f} runs/s"
    )
    print(
        f"  with {LATENCY_SECONDS * 1000:.0f} ms per cloud call: "
        f"sequential {f['slow_sequential_runs_per_s']:.0f} runs/s, "
        f"one tick {f['slow_tick_runs_per_s']:.0f} runs/s "
        f"({f['slow_tick_runs_per_s'] / f['slow_sequential_runs_per_s']:.1f}x)"
    )
    print(f"  rendering alone (merge, validate, render): p50 {f['render_p50_ms']:.3f} ms")
    print(f"  baseline, the store's bare claim: p50 {f['claim_p50_ms']:.3f} ms")
    print(f"  ratio per-run p50 / bare claim p50: {f['per_run_p50_ms'] / f['claim_p50_ms']:.1f}x")
    target = "met" if f["per_run_p50_ms"] <= 1.0 else "MISSED"
    print(f"  target p50 ≤ 1 ms per run: {target}")


if __name__ == "__main__":
    main()
