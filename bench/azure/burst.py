"""ACI: ARM calls per run, and a 200-run burst against ACI's create quota (100 container groups per 5 minutes),
end to end: store → dispatcher and tick (and queue redelivery) → the real azure-mgmt-containerinstance client →
the fake ARM server enforcing the quota with 429 + Retry-After.

Time. Two ways, measured in the same run:

- **virtual clock** (the headline figures): the fake's quota window, the create throttle, the dispatcher's clock
  and its retry waits, the timer and queue visibility all read one simulated clock, which jumps from event to
  event (next tick, next message visible, end of a retry wait). Our own processing takes no simulated time, as it
  nearly does against a 300 s window (about a second per 100 runs; printed below). HTTP, the SDK, threads and
  the store are all real.
- **real time scaled 1/100** (300 s window → 3 s, 60 s timer → 0.6 s, 30 s deadline → 0.3 s): the same burst on
  the wall clock. Our own processing is *not* scaled, so it weighs 100 times more than it would in Azure: an upper
  bound.

The quota floor is the least time 200 creates can take: the 101st cannot start before the first leaves the
300 s window. Retry-After then exceeds the dispatcher's 30 s submit deadline, so throttled runs are given back
(REQUEUED) at once and are submitted again by the next tick, or by their queue message's next delivery.

    .venv/bin/python -m bench.azure.burst [--runs 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.figures import Figure, median_of, print_figures
from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.azure.backend import AciBackend
from push_pools.platforms.azure.clients import CreateThrottle
from push_pools.settings import Settings
from push_pools.tick import tick
from push_pools.triggers.handling import RequestHandler
from push_pools.triggers.payloads import RunRequest
from tests.fakes.arm import FakeArm, fake_clients

CREATE_LIMIT = 100
CREATE_WINDOW = 300.0
TICK_SECONDS = 60.0
REAL_TIME_SCALE = 100.0
PHASES = (0.0, 15.0, 30.0, 45.0)
"""Where the timer's ticks fall relative to the burst (a webhook burst lands anywhere in the minute)."""
HOST_JSON = Path(__file__).resolve().parents[2] / "infra" / "azure" / "host.json"
SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"


class VirtualClock:
    """Simulated seconds, moved forward by the benchmark's event loop only."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance_to(self, moment: float) -> None:
        with self._lock:
            self._now = max(self._now, moment)


@dataclass
class Bench:
    arm: FakeArm
    store: LocalStore
    dispatcher: Dispatcher
    runs: list[FlowRun]


def build(home: Path, arm: FakeArm, runs: int, *, scale: float = 1.0, clock: VirtualClock | None = None) -> Bench:
    settings = Settings(
        home=home,
        tick_interval_seconds=TICK_SECONDS / scale,
        submit_deadline_seconds=30 / scale,
        submit_backoff_max_seconds=8 / scale,
        tick_batch_size=max(runs, 1),
    )
    store = LocalStore(settings.store_path)
    template = default_base_job_template("aci")
    defaults = {"subscription_id": SUBSCRIPTION, "resource_group_name": "rg-bench", "location": "westeurope"}
    for name, value in defaults.items():
        template["variables"]["properties"][name]["default"] = value
    pool = store.save_pool(WorkPool(name="azure", type="aci", base_job_template=template))
    deployment = store.save_deployment(
        Deployment(id=str(uuid.uuid4()), name="etl", pool_name=pool.name, image="ghcr.io/acme/etl:1", command="etl")
    )
    throttle = CreateThrottle(monotonic=clock) if clock else None
    backend = AciBackend(fake_clients(arm), retention=timedelta(0), throttle=throttle)
    epoch = datetime.now(UTC)
    if clock is not None:
        virtual = clock
        dispatcher = Dispatcher(
            store,
            Backends(settings, {"aci": backend}),
            settings,
            clock=lambda: epoch + timedelta(seconds=virtual()),
            # A retry's wait moves the simulated clock; concurrent waits for the same moment move it once.
            sleep=lambda seconds: virtual.advance_to(virtual() + seconds),
        )
    else:
        dispatcher = Dispatcher(store, Backends(settings, {"aci": backend}), settings)
    created = [store.create_run(deployment, epoch, now=epoch) for _ in range(runs)]
    return Bench(arm, store, dispatcher, created)


def quota_floor(runs: int) -> float:
    return CREATE_WINDOW * (math.ceil(runs / CREATE_LIMIT) - 1)


# ---- calls per run ----------------------------------------------------------------------------------------------


def calls_per_run(runs: int = 50) -> dict[str, float]:
    """A quiet day: submit, three ticks while running, finish (one run in five fails), two ticks to read and sweep."""
    with tempfile.TemporaryDirectory() as home, FakeArm() as arm:
        bench = build(Path(home), arm, runs)
        bench.dispatcher.backends.for_type("aci").retention = timedelta(0)  # type: ignore[attr-defined]
        started = time.perf_counter()
        tick(bench.dispatcher)
        submit_seconds = time.perf_counter() - started
        writes_at_submit = arm.calls["PUT group"]
        for _ in range(2):
            tick(bench.dispatcher)
        for index, name in enumerate(sorted(arm.created)):
            arm.finish(name, 1 if index % 5 == 0 else 0, logs="done", at=datetime.now(UTC) - timedelta(minutes=1))
        tick(bench.dispatcher)
        tick(bench.dispatcher)
        bench.store.close()
        calls = arm.calls
        return {
            "writes_per_submit": writes_at_submit / runs,
            "calls_per_run": sum(calls.values()) / runs,
            "reads_per_run": (calls["GET group"] + calls["GET list"]) / runs,
            "log_reads_per_failed_run": calls["GET logs"] / math.ceil(runs / 5),
            "deletes_per_run": calls["DELETE group"] / runs,
            "submit_ms_per_run": submit_seconds / runs * 1000,
        }


# ---- the burst, on the simulated clock ----------------------------------------------------------------------------


def virtual_burst(runs: int, phase: float, *, queue: bool) -> dict[str, float]:
    """The burst arrives at t=0 by webhook (or as queue messages); ticks fall at phase + k·60 s."""
    clock = VirtualClock()
    with (
        tempfile.TemporaryDirectory() as home,
        FakeArm(create_limit=CREATE_LIMIT, create_window=CREATE_WINDOW, clock=clock) as arm,
    ):
        bench = build(Path(home), arm, runs, clock=clock)
        handler = RequestHandler(bench.dispatcher)
        messages = QueueMessages(handler, bench.runs) if queue else None
        if messages is None:
            # Webhooks: one per run at once; a 503 is not sent again (Prefect's call-webhook does not retry).
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda run: handler.handle(RunRequest(flow_run_id=run.id)), bench.runs))
        next_tick = phase
        give_up = 20 * CREATE_WINDOW
        while len(arm.created) < runs and clock() < give_up:
            next_message = messages.next_visible() if messages else math.inf
            if next_message <= next_tick:
                clock.advance_to(next_message)
                messages.deliver_visible(clock())  # type: ignore[union-attr]
            else:
                clock.advance_to(next_tick)
                tick(bench.dispatcher)
                next_tick += TICK_SECONDS
        return _burst_figures(bench, runs, messages.poisoned if messages else 0)


class QueueMessages:
    """The Functions host's queue trigger in miniature: every run's message visible at t=0; a message not
    acknowledged is visible again after host.json's visibilityTimeout, and poisoned after maxDequeueCount tries."""

    def __init__(self, handler: RequestHandler, runs: list[FlowRun]) -> None:
        queues = json.loads(HOST_JSON.read_text())["extensions"]["queues"]
        hours, minutes, seconds = (int(part) for part in queues["visibilityTimeout"].split(":"))
        self.visibility = 3600 * hours + 60 * minutes + seconds
        self.max_dequeue = int(queues["maxDequeueCount"])
        self.handler = handler
        self.waiting = [(0.0, 0, RunRequest(flow_run_id=run.id).to_message()) for run in runs]
        self.poisoned = 0

    def next_visible(self) -> float:
        return min((visible for visible, _, _ in self.waiting), default=math.inf)

    def deliver_visible(self, now: float) -> None:
        due = [message for message in self.waiting if message[0] <= now]
        self.waiting = [message for message in self.waiting if message[0] > now]
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(lambda message: self.handler.handle_message(message[2]), due))
        for (_, count, body), reply in zip(due, replies, strict=True):
            if reply.acknowledged:
                continue
            if count + 1 >= self.max_dequeue:
                self.poisoned += 1
            else:
                self.waiting.append((now + self.visibility, count + 1, body))


# ---- the burst, on the wall clock scaled 1/100 ----------------------------------------------------------------------


def real_time_burst(runs: int) -> dict[str, float]:
    scaled_window = CREATE_WINDOW / REAL_TIME_SCALE
    with (
        tempfile.TemporaryDirectory() as home,
        FakeArm(create_limit=CREATE_LIMIT, create_window=scaled_window, decimal_retry_after=True) as arm,
    ):
        bench = build(Path(home), arm, runs, scale=REAL_TIME_SCALE)
        start = time.monotonic()
        next_tick, busy = start, 0.0
        while len(arm.created) < runs and time.monotonic() < start + 20 * scaled_window:
            if time.monotonic() >= next_tick:
                began = time.monotonic()
                tick(bench.dispatcher)
                busy += time.monotonic() - began
                next_tick += TICK_SECONDS / REAL_TIME_SCALE
            time.sleep(0.002)
        figures = _burst_figures(bench, runs, 0, start=start, scale=REAL_TIME_SCALE)
        figures["tick_busy_real_s"] = busy
        return figures


def _burst_figures(
    bench: Bench, runs: int, poisoned: int, *, start: float = 0.0, scale: float = 1.0
) -> dict[str, float]:
    arm = bench.arm
    submitted = sum(1 for run in bench.runs if bench.store.get_run(run.id).infrastructure_pid)
    bench.store.close()
    elapsed = (max(arm.create_times) - start) * scale if arm.create_times else math.inf
    return {
        "elapsed_s": elapsed,
        "ratio": elapsed / quota_floor(runs),
        "failures": runs - submitted,
        "duplicates": sum(count - 1 for count in arm.created.values()),
        "writes_per_run": arm.calls["PUT group"] / runs,
        "throttled_writes": arm.responses["PUT group 429"],
        "poisoned": poisoned,
    }


# ---- report -------------------------------------------------------------------------------------------------------


def measure(runs: int = 200, repeats: int = 3) -> list[Figure]:
    name = "azure"
    calls = median_of(repeats, calls_per_run)
    figures = [
        Figure(name, "write calls per run, steady state (one PUT)", calls["writes_per_submit"], "calls", "= 1",
               calls["writes_per_submit"] == 1.0),
        Figure(name, "ARM calls per run: submit, 3 ticks running, finish, sweep", calls["calls_per_run"], "calls"),
        Figure(name, "  of which reads (GET group, list)", calls["reads_per_run"], "calls"),
        Figure(name, "  log reads per failed run", calls["log_reads_per_failed_run"], "calls"),
        Figure(name, "  deletes per run (sweep)", calls["deletes_per_run"], "calls"),
        Figure(name, "our processing per submitted run (tick, real time)", calls["submit_ms_per_run"], "ms"),
    ]  # fmt: skip
    floor = quota_floor(runs)
    webhook = [median_of(repeats, lambda p=phase: virtual_burst(runs, p, queue=False)) for phase in PHASES]  # type: ignore[misc]
    ratios = [f["ratio"] for f in webhook]
    worst = max(webhook, key=lambda f: f["ratio"])
    figures += [
        Figure(name, f"{runs}-run burst by webhook, 60 s timer (simulated clock), median over phases {PHASES}",
               statistics.median(ratios), "x floor", "≤ 1.1", statistics.median(ratios) <= 1.1),
        Figure(name, f"  worst phase: time to last create (floor {floor:.0f} s)", worst["elapsed_s"], "s"),
        Figure(name, "  worst phase ÷ quota floor", worst["ratio"], "x"),
        Figure(name, "  runs not submitted (all phases)", sum(f["failures"] for f in webhook), "", "0",
               sum(f["failures"] for f in webhook) == 0),
        Figure(name, "  runs with two groups (all phases)", sum(f["duplicates"] for f in webhook), "", "0",
               sum(f["duplicates"] for f in webhook) == 0),
        Figure(name, "  write calls per run (429s included), worst phase", worst["writes_per_run"], "calls"),
    ]  # fmt: skip
    queued = median_of(repeats, lambda: virtual_burst(runs, 30.0, queue=True))
    figures += [
        Figure(name, f"{runs}-run burst by queue, host.json redelivery (simulated clock): ÷ floor", queued["ratio"],
               "x", "≤ 1.1", queued["ratio"] <= 1.1),
        Figure(name, "  time to last create", queued["elapsed_s"], "s"),
        Figure(name, "  runs not submitted", queued["failures"], "", "0", queued["failures"] == 0),
        Figure(name, "  runs with two groups", queued["duplicates"], "", "0", queued["duplicates"] == 0),
        Figure(name, "  write calls per run (429s included)", queued["writes_per_run"], "calls"),
        Figure(name, "  messages poisoned", queued["poisoned"], ""),
    ]  # fmt: skip
    real = median_of(repeats, lambda: real_time_burst(runs))
    figures += [
        Figure(name, f"{runs}-run burst by timer, wall clock scaled 1/{REAL_TIME_SCALE:.0f}: ÷ floor (upper bound)",
               real["ratio"], "x"),
        Figure(name, "  time to last create, unscaled", real["elapsed_s"], "s"),
        Figure(name, "  our tick processing in that, real seconds (weighs 100x in the scaled figure)",
               real["tick_busy_real_s"], "s"),
        Figure(name, "  runs not submitted / with two groups", real["failures"] + real["duplicates"], "", "0",
               real["failures"] + real["duplicates"] == 0),
    ]  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"bench.azure: median of {args.repeats} repeats; quota {CREATE_LIMIT} creates per {CREATE_WINDOW:.0f} s")
    print_figures(measure(args.runs, args.repeats))


if __name__ == "__main__":
    main()
