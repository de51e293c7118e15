"""AWS benchmarks against moto: cloud calls per run and bursts against ECS's rate limits (`burst`), the Lambda
entry point's cold start and footprint (`footprint`), and the lateness of its webhook, delayed-queue and tick
paths (`lateness`). `.venv/bin/python -m bench.aws [--quick]` runs them all; each module also runs alone."""

from __future__ import annotations

from bench.figures import Figure


def measure(quick: bool = False) -> list[Figure]:
    from bench.aws import burst, footprint, lateness

    calls_and_bursts = burst.measure(runs=200, repeats=1, instances=0) if quick else burst.measure(runs=200)
    return calls_and_bursts + footprint.measure(quick) + lateness.measure(quick)
