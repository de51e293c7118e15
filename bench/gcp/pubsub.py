"""A stand-in for Pub/Sub pushing to Cloud Functions instances, on a clock `scale` times faster than real time.

Messages wait in a queue ordered by delivery time; `instances` threads (one message at a time each, as a function
instance with concurrency 1) take the next due one and hand it to their own `RequestHandler`. A refused message
comes back after Pub/Sub's exponential backoff (minimum, doubled per refusal, up to the maximum), and after
`max_delivery_attempts` goes to the dead letters instead.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from push_pools.triggers.handling import RequestHandler


@dataclass
class Delivery:
    acknowledged: int = 0
    refused: int = 0
    dead_letters: list[str] = field(default_factory=list)
    finished_at: float = 0.0


def deliver(
    handlers: Sequence[RequestHandler],
    messages: Sequence[str],
    *,
    scale: float,
    minimum_backoff: float = 10.0,
    maximum_backoff: float = 300.0,
    max_delivery_attempts: int = 10,
) -> Delivery:
    """Deliver every message until it is acknowledged or dead-lettered; returns when all are."""
    order = itertools.count()
    start = time.monotonic()
    queue: list[tuple[float, int, str, int]] = [(start, next(order), message, 1) for message in messages]
    heapq.heapify(queue)
    outcome = Delivery()
    outstanding = len(messages)
    condition = threading.Condition()

    def instance(handler: RequestHandler) -> None:
        nonlocal outstanding
        while True:
            with condition:
                while outstanding and (not queue or queue[0][0] > time.monotonic()):
                    condition.wait(timeout=max(0.0, queue[0][0] - time.monotonic()) if queue else None)
                if not outstanding:
                    return
                _, _, message, attempt = heapq.heappop(queue)
            acknowledged = handler.handle_message(message).acknowledged
            with condition:
                if acknowledged:
                    outcome.acknowledged += 1
                elif attempt >= max_delivery_attempts:
                    outcome.dead_letters.append(message)
                else:
                    outcome.refused += 1
                    backoff = min(maximum_backoff, minimum_backoff * 2 ** (attempt - 1)) / scale
                    heapq.heappush(queue, (time.monotonic() + backoff, next(order), message, attempt + 1))
                if acknowledged or attempt >= max_delivery_attempts:
                    outstanding -= 1
                    if not outstanding:
                        outcome.finished_at = time.monotonic() - start
                condition.notify_all()

    threads = [threading.Thread(target=instance, args=(handler,), daemon=True) for handler in handlers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome
