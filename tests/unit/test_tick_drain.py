"""A tick drains what is due: page after page while runs are due and its deadline allows, never asking for more than
the orchestrator's page size, never looping on runs it gave back, and saying what it left at its deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from push_pools.backends.base import RunContext
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.errors import TransientSubmissionError
from push_pools.models import FlowRun, StateType, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick
from tests.conftest import ScheduleRun


class CountingStore(LocalStore):
    """The embedded store, counting the due-run pages asked for and the limits they asked with."""

    max_page_size = 3

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.limits: list[int] = []

    def scheduled_runs(self, pool_name: str, before: datetime, limit: int) -> list[FlowRun]:
        self.limits.append(limit)
        return super().scheduled_runs(pool_name, before, limit)


@pytest.fixture
def store(settings: Settings) -> Iterator[LocalStore]:
    store = CountingStore(settings.store_path)
    yield store
    store.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", tick_batch_size=50, submit_attempts=2, submit_deadline_seconds=5)


def test_one_tick_submits_every_due_run_a_page_at_a_time(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: CountingStore, schedule_run: ScheduleRun
) -> None:
    runs = [schedule_run() for _ in range(10)]
    later = schedule_run(in_seconds=600)
    report = tick(dispatcher)
    assert report.counts() == {"submitted": 10}
    assert {store.get_run(run.id).state.type for run in runs} == {StateType.PENDING}
    assert store.get_run(later.id).state.type is StateType.SCHEDULED
    assert store.limits == [3, 3, 3, 3], "pages of the orchestrator's size, though the batch size says 50"
    assert report.left_due == 0
    assert "left" not in report.summary()


def test_a_tick_past_its_deadline_takes_one_page_says_what_it_left_and_the_next_continues(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: CountingStore, schedule_run: ScheduleRun
) -> None:
    for _ in range(7):
        schedule_run()
    report = tick(dispatcher, deadline=time.monotonic() - 1)
    assert report.counts() == {"submitted": 3}
    assert report.left_due == 3
    assert "stopped at its deadline with 3+ due run(s) left" in report.summary()
    assert tick(dispatcher, deadline=time.monotonic() - 1).counts() == {"submitted": 3}
    assert tick(dispatcher).counts() == {"submitted": 1}
    assert backend.calls["submit"] == 7


def test_runs_given_back_in_this_tick_are_not_taken_again_by_it(
    store: CountingStore, settings: Settings, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    def throttled(operation: str, run: RunContext | None) -> None:
        raise TransientSubmissionError("throttled")

    backend = InMemoryBackend(fail=throttled)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend}), settings, sleep=lambda _: None)
    runs = [schedule_run() for _ in range(3)]
    report = tick(dispatcher)
    assert report.counts() == {"requeued": 3}
    assert backend.calls["submit"] == 3 * settings.submit_attempts
    assert {store.get_run(run.id).state.type for run in runs} == {StateType.SCHEDULED}
    assert len(store.limits) == 2, "the second page held only runs this tick had given back: it stopped there"


def test_a_pool_at_its_concurrency_limit_stops_draining(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: CountingStore, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    store.save_pool(pool.model_copy(update={"concurrency_limit": 2}), overwrite=True)
    for _ in range(6):
        schedule_run()
    report = tick(dispatcher)
    assert backend.calls["submit"] == 2
    assert report.counts() == {"submitted": 2, "deferred": 2}
    assert store.limits == [2, 2]
