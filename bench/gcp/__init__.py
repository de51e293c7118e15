"""Cloud Run benchmarks, through the real `google-cloud-run` client and the local fake: write calls per run and a
300-run burst against Cloud Run's job-run quota (`burst`), and the Cloud Functions entry point's cold start and
footprint (`footprint`). `.venv/bin/python -m bench.gcp [--quick]` runs them all; each module also runs alone."""

from __future__ import annotations

from bench.figures import Figure


def measure(quick: bool = False) -> list[Figure]:
    from bench.gcp import burst, footprint

    calls_and_burst = burst.measure(repeats=1, scale=10.0, runs=120) if quick else burst.measure(2, 10.0, 300)
    return calls_and_burst + footprint.measure(quick)
