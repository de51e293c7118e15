"""Benchmarks of the Prefect orchestrator against a real Prefect server (from .venv-prefect): lateness of
push-pools' tick and webhook and of a Prefect process worker, side by side (`lateness`).
`.venv/bin/python -m bench.prefect [--runs N] [--window S] [--tick-interval S] [--burst]`."""

from __future__ import annotations

from bench.figures import Figure


def measure(quick: bool = False) -> list[Figure]:
    """`make bench`: 24 runs per path due over 30 s, a tick every 30 s (the modules tick every 60 s: `python -m
    bench.prefect` measures that; `bench.aws.lateness` too); quick: 4 runs over 20 s, ticks 10 s apart."""
    from bench.prefect import lateness

    return lateness.measure(4, 20.0, 10.0) if quick else lateness.measure(24, 30.0, 30.0)
