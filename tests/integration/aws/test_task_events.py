"""Submit → ECS task state change → run state, through the Lambda entry point: crash detection, completion for
orchestrators that do not report flow states, stickiness, events that are not the run's, and cancellation."""

from __future__ import annotations

from typing import Any

import pytest

from push_pools.models import FlowRun, StateType
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.aws.function import LambdaFunction
from push_pools.platforms.aws.status import parse_infrastructure_id
from push_pools.tick import tick
from tests.integration.aws.conftest import EcsPool, load_fixture, moto_task, task_event


def submitted(ecs_pool: EcsPool) -> tuple[FlowRun, str]:
    run = ecs_pool.schedule()
    outcome = ecs_pool.dispatcher.submit_run(run.id)
    return ecs_pool.store.get_run(run.id), parse_infrastructure_id(outcome.infrastructure_pid or "")[1]


def deliver(ecs_pool: EcsPool, event: dict[str, Any]) -> dict[str, Any]:
    return LambdaFunction(ecs_pool.dispatcher)(event, None)


@pytest.mark.parametrize(
    ("exit_code", "stop_code", "state", "message"),
    [
        (1, "EssentialContainerExited", StateType.CRASHED, "Infrastructure exited with code 1"),
        (137, "EssentialContainerExited", StateType.CRASHED, "exited with code 137"),
        (None, "TaskFailedToStart", StateType.CRASHED, "ECS task failed to start"),
        (0, "EssentialContainerExited", StateType.COMPLETED, "exited with code 0"),
    ],
)
def test_a_stopped_task_ends_its_run(
    ecs_pool: EcsPool, exit_code: int | None, stop_code: str, state: StateType, message: str
) -> None:
    run, task_arn = submitted(ecs_pool)
    event = ecs_pool.stop(task_arn, exit_code=exit_code, stop_code=stop_code)
    answer = deliver(ecs_pool, event)
    assert answer["status"] == "applied"
    now = ecs_pool.store.get_run(run.id).state
    assert now.type is state
    assert message in (now.message or "")


def test_a_running_task_marks_the_run_running(ecs_pool: EcsPool) -> None:
    run, task_arn = submitted(ecs_pool)
    deliver(ecs_pool, task_event(ecs_pool.world, task_arn))
    assert ecs_pool.store.get_run(run.id).state.type is StateType.RUNNING


def test_terminal_states_are_sticky(ecs_pool: EcsPool) -> None:
    run, task_arn = submitted(ecs_pool)
    completed = ecs_pool.stop(task_arn, exit_code=0)
    deliver(ecs_pool, completed)
    late_failure = ecs_pool.stop(task_arn, exit_code=1)
    assert deliver(ecs_pool, late_failure)["changed"] is False
    assert deliver(ecs_pool, completed)["changed"] is False
    assert ecs_pool.store.get_run(run.id).state.type is StateType.COMPLETED


def test_an_event_for_a_task_that_is_not_the_runs_is_ignored(ecs_pool: EcsPool) -> None:
    run, task_arn = submitted(ecs_pool)
    event = ecs_pool.stop(task_arn, exit_code=1)
    event["detail"]["taskArn"] = task_arn.rsplit("/", 1)[0] + "/ffffffffffffffffffffffffffffffff"
    answer = deliver(ecs_pool, event)
    assert answer == answer | {"status": "ignored", "reason": "the task is not the run's recorded infrastructure"}
    assert ecs_pool.store.get_run(run.id).state.type is StateType.PENDING


def test_events_for_unknown_runs_and_other_tasks_are_ignored(ecs_pool: EcsPool) -> None:
    event = load_fixture("ecs_task_state_change.json")
    assert deliver(ecs_pool, event)["reason"] == "unknown flow run"
    event["detail"]["startedBy"] = "ecs-svc/1234567890"
    assert deliver(ecs_pool, event)["reason"] == "not a push-pools task"
    event["detail"]["startedBy"] = "push-pools-not-a-uuid"
    assert deliver(ecs_pool, event)["reason"] == "not a push-pools task"


def test_a_stopped_task_of_the_current_attempt_counts_before_it_is_recorded(ecs_pool: EcsPool) -> None:
    """The function died between RunTask and recording: the task's end must not be lost meanwhile."""
    run, task_arn = submitted(ecs_pool)
    with ecs_pool.store._write() as db:
        db.execute("UPDATE flow_runs SET infrastructure_pid = NULL WHERE id = ?", (run.id,))
    running = task_event(ecs_pool.world, task_arn)
    assert deliver(ecs_pool, running)["reason"] == "the run's infrastructure is not recorded yet"
    other_attempt = ecs_pool.stop(task_arn, exit_code=1)
    other_attempt["detail"]["startedBy"] = f"push-pools-{run.id}-7"
    assert deliver(ecs_pool, other_attempt)["reason"] == "the task belongs to another attempt of the run"
    assert deliver(ecs_pool, ecs_pool.stop(task_arn, exit_code=1))["status"] == "applied"
    assert ecs_pool.store.get_run(run.id).state.type is StateType.CRASHED


class _PrefectLikeStore(LocalStore):
    reports_flow_states = True


def test_exit_zero_completes_nothing_when_the_flow_reports_its_own_states(ecs_pool: EcsPool) -> None:
    store = _PrefectLikeStore(ecs_pool.store.path)
    ecs_pool.dispatcher.orchestrator = store
    run, task_arn = submitted(ecs_pool)
    deliver(ecs_pool, ecs_pool.stop(task_arn, exit_code=0))
    assert store.get_run(run.id).state.type is StateType.PENDING
    deliver(ecs_pool, ecs_pool.stop(task_arn, exit_code=1))
    assert store.get_run(run.id).state.type is StateType.CRASHED
    store.close()


def test_cancel_stops_the_task_and_its_stop_event_changes_nothing(ecs_pool: EcsPool) -> None:
    run, task_arn = submitted(ecs_pool)
    deliver(ecs_pool, task_event(ecs_pool.world, task_arn))
    ecs_pool.store.request_cancellation(run.id)
    report = tick(ecs_pool.dispatcher)
    assert report.cancelled == 1
    assert moto_task(task_arn).desired_status == "STOPPED"
    assert ecs_pool.store.get_run(run.id).state.type is StateType.CANCELLED
    stopped = ecs_pool.stop(task_arn, exit_code=143, stop_code="UserInitiated")
    assert deliver(ecs_pool, stopped)["changed"] is False
    assert ecs_pool.store.get_run(run.id).state.type is StateType.CANCELLED
