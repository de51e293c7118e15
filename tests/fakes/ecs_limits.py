"""ECS's rate limits, enforced in front of a moto server (see `aws_front`): token buckets that answer a 400
ThrottlingException when empty, as ECS does. Shared by the tests and `bench.aws`.

Defaults are ECS's documented limits per account and region: RunTask 100 burst / 40 per second; Fargate task
launches 100 burst / 20 per second (RunTask on FARGATE or FARGATE_SPOT, one per task); RegisterTaskDefinition 20
burst / 1 per second; DescribeTasks 100 burst / 20 per second. A RunTask refused for want of a launch token has
still spent its RunTask token, as the API call was made.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from botocore.awsrequest import AWSResponse

from tests.fakes.aws_front import Call, PassThrough, error_response

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


@dataclass(frozen=True)
class Limit:
    burst: float
    per_second: float


RUN_TASK = Limit(100, 40)
FARGATE_LAUNCHES = Limit(100, 20)
REGISTER_TASK_DEFINITION = Limit(20, 1)
DESCRIBE_TASKS = Limit(100, 20)


class TokenBucket:
    """Holds up to `burst` tokens, refilled at `per_second`; thread-safe."""

    def __init__(self, limit: Limit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = limit.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.limit.burst, self._tokens + (now - self._updated) * self.limit.per_second)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class EcsRateLimits(PassThrough):
    """ECS's API and launch rate limits as token buckets."""

    def __init__(
        self,
        *,
        run_task: Limit = RUN_TASK,
        fargate_launches: Limit = FARGATE_LAUNCHES,
        register: Limit = REGISTER_TASK_DEFINITION,
        describe_tasks: Limit = DESCRIBE_TASKS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.buckets = {
            "RunTask": TokenBucket(run_task, clock),
            "RegisterTaskDefinition": TokenBucket(register, clock),
            "DescribeTasks": TokenBucket(describe_tasks, clock),
        }
        self.launches = TokenBucket(fargate_launches, clock)
        self.throttled: Counter[str] = Counter()
        self.admitted: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_request(self, call: Call) -> AWSResponse | None:
        if call.service != "ecs":
            return None
        bucket = self.buckets.get(call.operation)
        admitted = bucket is None or bucket.take()
        if admitted and call.operation == "RunTask" and _fargate(call.params):
            admitted = self.launches.take()
        with self._lock:
            (self.admitted if admitted else self.throttled)[call.operation] += 1
        return None if admitted else error_response(call, "ThrottlingException", "Rate exceeded")

    def floor_seconds(self, launches: int) -> float:
        """The least time `launches` Fargate RunTasks can take under these buckets (starting full)."""
        limits = (self.buckets["RunTask"].limit, self.launches.limit)
        return max(max(0.0, (launches - limit.burst) / limit.per_second) for limit in limits)


def _fargate(params: dict[str, object]) -> bool:
    strategy = params.get("capacityProviderStrategy")
    if isinstance(strategy, list) and strategy:
        return any(isinstance(item, dict) and item.get("capacityProvider") in FARGATE_PROVIDERS for item in strategy)
    return params.get("launchType", "FARGATE") in FARGATE_PROVIDERS
