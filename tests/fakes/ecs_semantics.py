"""Layers that give a moto server the ECS behaviour it lacks (see `aws_front`).

- `EcsClientTokens`: RunTask honours `clientToken` as ECS does. Per cluster, the first call with a token starts
  tasks; a later call with the same token and the same parameters gets the first call's answer (no new task);
  with different parameters, a ConflictException whose `resourceIds` are the first call's task ARNs. Calls with
  one token are serialised, as ECS serialises them.
- `EcsMissingTasks`: StopTask of a task ECS does not know answers InvalidParameterException, and DescribeTasks
  lists it under `failures` with reason MISSING (moto crashes on the first and omits the second).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from tests.fakes.aws_front import Call, PassThrough, error_response, json_response

MOTO_ACCOUNT = "123456789012"


@dataclass
class _Token:
    fingerprint: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None
    task_arns: list[str] = field(default_factory=list)


class EcsClientTokens(PassThrough):
    """RunTask idempotency by clientToken."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._lock = threading.Lock()
        self.replayed = 0
        self.conflicts = 0

    def on_request(self, call: Call) -> AWSResponse | None:
        token = call.params.get("clientToken")
        if call.service != "ecs" or call.operation != "RunTask" or not token:
            return None
        key = (_cluster_name(call.params.get("cluster")), str(token))
        fingerprint = json.dumps({k: v for k, v in call.params.items() if k != "clientToken"}, sort_keys=True)
        while True:
            with self._lock:
                entry = self._tokens.get(key)
                if entry is None:
                    self._tokens[key] = _Token(fingerprint)
                    call.context["client_token_key"] = key
                    return None  # the first call with this token goes to ECS
            entry.done.wait(timeout=30)
            if entry.answer is not None:
                return self._repeat(call, entry, fingerprint)
            # the first call failed and freed the token: try to be the first again

    def _repeat(self, call: Call, entry: _Token, fingerprint: str) -> AWSResponse:
        with self._lock:
            if entry.fingerprint == fingerprint:
                self.replayed += 1
                return json_response(call, 200, entry.answer or {})
            self.conflicts += 1
        message = "The specified client token has already been used with different parameters."
        return error_response(call, "ConflictException", message, resourceIds=entry.task_arns)

    def on_response(self, call: Call, status: int, body: bytes) -> None:
        key = call.context.get("client_token_key")
        if key is None:
            return
        with self._lock:
            entry = self._tokens[key]
            answer = json.loads(body) if status == 200 and body else None
            if answer and answer.get("tasks"):
                entry.answer = answer
                entry.task_arns = [task["taskArn"] for task in answer["tasks"]]
            else:
                del self._tokens[key]
        entry.done.set()


class EcsMissingTasks(PassThrough):
    """StopTask and DescribeTasks of tasks ECS does not know, answered as ECS answers them."""

    def __init__(self, region: str) -> None:
        self.region = region

    def on_request(self, call: Call) -> AWSResponse | None:
        if call.service != "ecs" or call.operation not in ("StopTask", "DescribeTasks"):
            return None
        cluster = _cluster_name(call.params.get("cluster"))
        known = self._known_tasks(cluster)
        if known is None:
            return None  # no such cluster: moto answers ClusterNotFoundException itself
        if call.operation == "StopTask":
            if _task_id(call.params.get("task", "")) in known:
                return None
            return error_response(call, "InvalidParameterException", "The referenced task was not found.")
        missing = [arn for arn in call.params.get("tasks", []) if _task_id(arn) not in known]
        if not missing:
            return None
        if len(missing) < len(call.params.get("tasks", [])):
            return None  # a mix: let moto list the known ones (it leaves the missing out)
        failures = [{"arn": arn, "reason": "MISSING"} for arn in missing]
        return json_response(call, 200, {"tasks": [], "failures": failures})

    def _known_tasks(self, cluster: str) -> set[str] | None:
        from moto.ecs.models import ecs_backends

        backend = ecs_backends[MOTO_ACCOUNT][self.region]
        if cluster not in backend.clusters:
            return None
        return {_task_id(arn) for arn in backend.tasks.get(cluster, {})}


def _cluster_name(cluster: Any) -> str:
    name = str(cluster or "default")
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def _task_id(task: str) -> str:
    return task.rsplit("/", 1)[-1]
