"""At most one task per run: concurrent deliveries, ECS's client token (honoured by the fake in front of the moto
server, as real ECS does), a crash between RunTask and recording, and throttling."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.jobs import run_context
from push_pools.models import StateType, SubmissionStatus
from push_pools.platforms.aws.function import LambdaFunction
from push_pools.tick import tick
from tests.fakes.aws_front import RandomThrottle
from tests.fakes.ecs_semantics import EcsClientTokens
from tests.integration.aws.conftest import EcsPool

DELIVERIES = 100


def tasks_of(ecs_pool: EcsPool, run_id: str) -> list[dict[str, object]]:
    return [task for task in ecs_pool.tasks() if str(task["startedBy"]).startswith(f"push-pools-{run_id}")]


def test_100_concurrent_deliveries_of_one_run_start_one_task(ecs_pool: EcsPool) -> None:
    run = ecs_pool.schedule()
    function = LambdaFunction(ecs_pool.dispatcher)
    message = {"Records": [{"messageId": "m", "eventSource": "aws:sqs", "body": json.dumps({"flow_run_id": run.id})}]}
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: function(message, None), range(DELIVERIES)))
    assert all(answer == {"batchItemFailures": []} for answer in answers)
    assert len(tasks_of(ecs_pool, run.id)) == 1
    assert ecs_pool.world.recorder.calls["ecs:RunTask"] == 1
    assert ecs_pool.store.get_run(run.id).infrastructure_pid is not None


def test_the_client_token_makes_concurrent_submissions_of_one_key_one_task(ecs_pool_server: EcsPool) -> None:
    run = ecs_pool_server.schedule()
    configuration = ecs_pool_server.dispatcher.prepare(run, ecs_pool_server.pool).configuration
    context = run_context(run, resubmission=True)
    ecs_pool_server.backend.submit(configuration, context)  # the task definition exists: the rest race on RunTask
    with ThreadPoolExecutor(max_workers=20) as pool:
        refs = list(pool.map(lambda _: ecs_pool_server.backend.submit(configuration, context), range(DELIVERIES)))
    assert len({ref.infrastructure_pid for ref in refs}) == 1
    assert len(tasks_of(ecs_pool_server, run.id)) == 1
    assert ecs_pool_server.world.find_layer(EcsClientTokens).replayed == DELIVERIES


def test_a_crash_between_run_task_and_recording_is_repaired_without_a_second_task(ecs_pool_server: EcsPool) -> None:
    run = ecs_pool_server.schedule()
    store = ecs_pool_server.store

    def crash(*args: object, **kwargs: object) -> bool:
        raise SystemExit("the function was killed after RunTask")

    original = store.record_submission
    store.record_submission = crash  # type: ignore[method-assign]
    with contextlib.suppress(SystemExit):
        ecs_pool_server.dispatcher.submit_run(run.id)
    store.record_submission = original  # type: ignore[method-assign]
    orphan = store.get_run(run.id)
    assert (orphan.state.type, orphan.infrastructure_pid) == (StateType.PENDING, None)
    assert len(tasks_of(ecs_pool_server, run.id)) == 1

    later = Dispatcher(
        store,
        Backends(ecs_pool_server.dispatcher.settings, {"ecs": ecs_pool_server.world.backend()}),
        ecs_pool_server.dispatcher.settings,
        clock=lambda: datetime.now(UTC) + timedelta(minutes=5),
        sleep=lambda _: None,
    )
    report = tick(later)
    assert [outcome.status for outcome in report.outcomes] == [SubmissionStatus.SUBMITTED]
    recovered = store.get_run(run.id)
    (task,) = tasks_of(ecs_pool_server, run.id)
    assert recovered.infrastructure_pid == f"push-pools::{task['taskArn']}"


@pytest.mark.slow  # the launch pacer really waits between RunTasks after each throttle: about 5 s in all
def test_with_30_percent_of_calls_throttled_every_run_is_submitted_once(ecs_pool_server: EcsPool) -> None:
    throttle = RandomThrottle(0.3, seed=11)
    ecs_pool_server.world.add_layer(throttle)
    runs = [ecs_pool_server.schedule() for _ in range(30)]
    for _ in range(3):  # a run whose tries all met throttling is scheduled again: the next tick takes it
        tick(ecs_pool_server.dispatcher)
        if all(ecs_pool_server.store.get_run(run.id).state.type is StateType.PENDING for run in runs):
            break
    assert all(ecs_pool_server.store.get_run(run.id).infrastructure_pid for run in runs)
    assert all(len(tasks_of(ecs_pool_server, run.id)) == 1 for run in runs)
    assert throttle.throttled["RunTask"] > 0
    assert throttle.passed["RunTask"] == len(runs)
