"""Benchmarks of the Prefect orchestrator: `python -m bench.prefect`."""
