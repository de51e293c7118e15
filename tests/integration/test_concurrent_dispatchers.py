"""20 dispatchers at once, as threads and as processes, over one embedded store: each due run is submitted
exactly once. The backend never deduplicates, so only the claim stands between a run and a second submission."""

from __future__ import annotations

import multiprocessing
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import StateType
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.tick import tick
from tests.conftest import ScheduleRun
from tests.fakes.counting_backend import FileCountingBackend

DISPATCHERS = 20
RUNS = 40


def dispatch_everything(home: str, ledger: str, run_ids: list[str], seed: int) -> None:
    """One dispatcher: deliver every run (in its own order), then tick, as a busy function instance would."""
    settings = Settings(home=Path(home))
    store = LocalStore(settings.store_path)
    dispatcher = Dispatcher(store, Backends(settings, {"process": FileCountingBackend(Path(ledger))}), settings)
    order = list(run_ids)
    random.Random(seed).shuffle(order)
    for run_id in order:
        dispatcher.submit_run(run_id)
    tick(dispatcher)
    store.close()


def test_twenty_threads_submit_each_run_once(
    settings: Settings, store: LocalStore, schedule_run: ScheduleRun, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    run_ids = [schedule_run().id for _ in range(RUNS)]
    with ThreadPoolExecutor(DISPATCHERS) as pool:
        futures = [
            pool.submit(dispatch_everything, str(settings.home), str(ledger), run_ids, seed)
            for seed in range(DISPATCHERS)
        ]
        for future in futures:
            future.result()
    submitted = FileCountingBackend(ledger).submitted()
    assert sorted(submitted) == sorted(run_ids), "every run once: none lost, none twice"
    runs = [store.get_run(run_id) for run_id in run_ids]
    assert all(run.infrastructure_pid == f"counted::{run.id}" for run in runs)
    assert {run.state.type for run in runs} <= {StateType.PENDING, StateType.RUNNING}


def test_twenty_processes_submit_each_run_once(
    settings: Settings, store: LocalStore, schedule_run: ScheduleRun, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    run_ids = [schedule_run().id for _ in range(RUNS)]
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=dispatch_everything, args=(str(settings.home), str(ledger), run_ids, seed))
        for seed in range(DISPATCHERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * DISPATCHERS
    submitted = FileCountingBackend(ledger).submitted()
    assert sorted(submitted) == sorted(run_ids), "every run once: none lost, none twice"
    assert all(store.get_run(run_id).infrastructure_pid for run_id in run_ids)
