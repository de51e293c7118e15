"""AWS benchmarks against moto: cloud calls per run and bursts against ECS's rate limits (`burst`), the Lambda
entry point's cold start and footprint (`footprint`), and the lateness of its webhook, delayed-queue and tick
paths (`lateness`). `.venv/bin/python -m bench.aws [--quick]` runs them all; each module also runs alone."""

from __future__ import annotations

from bench.figures import Figure


def measure(quick: bool = False) -> list[Figure]:
    from bench.aws import burst, footprint, lateness

    # `make bench`: the 500-run burst of the target, one instance, once; `python -m bench.aws.burst` repeats it and
    # adds four instances at once.
    calls_and_bursts = burst.measure(runs=200 if quick else 500, repeats=1, instances=0)
    return calls_and_bursts + footprint.measure(quick) + lateness.measure(quick)
