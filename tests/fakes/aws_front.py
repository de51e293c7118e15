"""A front for the AWS calls a boto3 session makes: layers that see each request as it goes on the wire and may
answer it themselves, like the service would, before it reaches moto.

The front hooks botocore's `before-send` event, which sits inside botocore's retry loop: an answer such as a 400
ThrottlingException goes through the real retry handler, exactly as from AWS. Use it with a moto *server*
(`ThreadedMotoServer`): in-process `mock_aws` answers every request itself in the same event, so a layer's answer
would not stop moto from acting on the request too.

Also here: `ActionRecorder`, which records the IAM action of every call a session makes (`ecs:RunTask`), and
`patch_moto_fargate_memory`, which works around moto's crash on containers without a `memory` value.
"""

from __future__ import annotations

import io
import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Protocol

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse


@dataclass
class Call:
    """One request on the wire."""

    service: str
    operation: str
    params: dict[str, Any]
    """The JSON body (AWS JSON protocols: ECS, SQS, Secrets Manager, EventBridge)."""
    context: dict[str, Any] = field(repr=False)
    url: str = ""


class Layer(Protocol):
    def on_request(self, call: Call) -> AWSResponse | None:
        """Answer the call, or None to let it through."""
        ...

    def on_response(self, call: Call, status: int, body: bytes) -> None:
        """See the answer to a call that went through."""
        ...


class _RawBody(io.BytesIO):
    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        data = self.read()
        if data:
            yield data


def json_response(call: Call, status: int, body: dict[str, Any]) -> AWSResponse:
    headers = {"content-type": "application/x-amz-json-1.1", "x-amzn-requestid": str(uuid.uuid4())}
    return AWSResponse(call.url, status, headers, _RawBody(json.dumps(body, default=str).encode()))


def error_response(call: Call, code: str, message: str, status: int = 400, **fields: Any) -> AWSResponse:
    return json_response(call, status, {"__type": code, "message": message, **fields})


class AwsFront:
    """Installs layers on a session (before its clients are made): each request passes them in order until one
    answers; requests that go through are shown to every layer with their answer."""

    def __init__(self, *layers: Layer) -> None:
        self.layers = list(layers)

    def install(self, session: boto3.session.Session) -> AwsFront:
        session.events.register_first("before-send", self._before_send)
        session.events.register("response-received", self._response_received)
        return self

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **kwargs: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        call = Call(service, operation, _json_body(request.body), request.context, request.url)
        request.context["front_call"] = call
        for layer in self.layers:
            answer = layer.on_request(call)
            if answer is not None:
                request.context["front_answered"] = True
                return answer
        request.context["front_answered"] = False
        return None

    def _response_received(self, response_dict: dict[str, Any] | None, context: dict[str, Any], **kwargs: Any) -> None:
        call = context.get("front_call")
        if call is None or context.get("front_answered"):
            return
        status = response_dict["status_code"] if response_dict else 0
        body = response_dict["body"] if response_dict else b""
        for layer in self.layers:
            layer.on_response(call, status, body)


def _json_body(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes | str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


class PassThrough:
    """Base for layers that only act on some calls."""

    def on_request(self, call: Call) -> AWSResponse | None:
        return None

    def on_response(self, call: Call, status: int, body: bytes) -> None:
        return None


class RandomThrottle(PassThrough):
    """Answers a share of the calls to one service with a 400 ThrottlingException, as AWS does under load."""

    def __init__(self, share: float, *, service: str = "ecs", seed: int = 0) -> None:
        self.share = share
        self.service = service
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.throttled: Counter[str] = Counter()
        self.passed: Counter[str] = Counter()

    def on_request(self, call: Call) -> AWSResponse | None:
        if call.service != self.service:
            return None
        with self._lock:
            throttle = self._random.random() < self.share
            (self.throttled if throttle else self.passed)[call.operation] += 1
        return error_response(call, "ThrottlingException", "Rate exceeded") if throttle else None


class ActionRecorder:
    """The IAM actions a session's clients call (`ecs:RunTask`), counted, from botocore's `before-call` event."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self, session: boto3.session.Session) -> ActionRecorder:
        session.events.register("before-call", self._record)
        return self

    def _record(self, model: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.signing_name}:{model.name}"] += 1

    @property
    def actions(self) -> set[str]:
        return set(self.calls)

    def total(self) -> int:
        return sum(self.calls.values())

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        """The calls made inside the block."""
        before = Counter(self.calls)
        delta: Counter[str] = Counter()
        yield delta
        delta.update(self.calls - before)


def patch_moto_fargate_memory(monkeypatch: Any) -> None:
    """moto adds up container `memory` values and crashes on a Fargate container that has none (only the task
    has, which ECS allows): let it count the task's memory for such a container."""
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def calculate(task_definition: Any) -> Any:
        task_memory = int(getattr(task_definition, "memory", None) or 0)
        containers = [
            {**c, "memory": c.get("memory") or c.get("memoryReservation") or task_memory}
            for c in task_definition.container_definitions
        ]
        return original(SimpleNamespace(container_definitions=containers))

    monkeypatch.setattr(EC2ContainerServiceBackend, "_calculate_task_resource_requirements", staticmethod(calculate))
