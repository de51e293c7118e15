"""Azure Container Instances benchmarks, through the real ACI client and the fake ARM server: calls per run and a
200-run burst against ACI's create quota (`burst`), and the Azure Functions entry point's cold start and footprint
(`footprint`). `.venv/bin/python -m bench.azure [--quick]` runs them all; each module also runs alone."""

from __future__ import annotations

from bench.figures import Figure


def measure(quick: bool = False) -> list[Figure]:
    from bench.azure import burst, footprint

    calls_and_bursts = burst.measure(runs=120, repeats=1) if quick else burst.measure(runs=200, repeats=1)
    return calls_and_bursts + footprint.measure(quick)
