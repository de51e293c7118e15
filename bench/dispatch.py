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

from bench.figures import Figure, median_of, percentile, print_figures
from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.jobs import prepare_job
from push_pools.models import Deployment, FlowRun, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick

JOB_VARIABLES = {"env": {"STAGE": "bench", "REGION": "eu-west-1"}, "working_dir": "/tmp"}


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


def measure(quick: bool = False) -> list[Figure]:
    """The figures for `python -m bench`; a quick run takes 200 runs."""
    return dispatch_figures(200, 3) if quick else dispatch_figures(1000, 3)


def dispatch_figures(runs: int = 1000, repeats: int = 5) -> list[Figure]:
    f = median_of(repeats, lambda: one_repeat(runs))
    name, latency = "dispatch", f"{LATENCY_SECONDS * 1000:.0f} ms per cloud call"
    slow_ratio = f["slow_tick_runs_per_s"] / f["slow_sequential_runs_per_s"]
    return [
        Figure(name, f"per run p50 ({runs} runs: claim, render, submit, record)", f["per_run_p50_ms"], "ms", "≤ 1 ms",
               f["per_run_p50_ms"] <= 1.0),
        Figure(name, "per run p99", f["per_run_p99_ms"], "ms"),
        Figure(name, "sequential throughput", f["sequential_runs_per_s"], "runs/s"),
        Figure(name, "one tick (8 threads), in-memory backend", f["tick_runs_per_s"], "runs/s"),
        Figure(name, f"sequential, {latency}", f["slow_sequential_runs_per_s"], "runs/s"),
        Figure(name, f"one tick, {latency}", f["slow_tick_runs_per_s"], "runs/s"),
        Figure(name, "  ratio tick / sequential at that latency", slow_ratio, "x"),
        Figure(name, "rendering alone p50 (merge, validate, render)", f["render_p50_ms"], "ms"),
        Figure(name, "baseline: the store's bare claim p50", f["claim_p50_ms"], "ms"),
        Figure(name, "  ratio per run / bare claim", f["per_run_p50_ms"] / f["claim_p50_ms"], "x"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"bench.dispatch: median of {args.repeats} repeats")
    print_figures(dispatch_figures(args.runs, args.repeats))


if __name__ == "__main__":
    main()
