"""Run the comparisons and print their figures: `.venv/bin/python -m bench.workers [--quick]`."""

from __future__ import annotations

import argparse

from bench.figures import print_figures
from bench.workers import measure


def main() -> None:
    parser = argparse.ArgumentParser(description="push-pools beside Prefect's own workers, on the same fakes.")
    parser.add_argument("--quick", action="store_true", help="a smoke test: batches of 20 runs, a 120-run burst")
    parser.add_argument("--repeats", type=int, default=1, help="repeats of the ECS calls and timing part (medians)")
    parser.add_argument("--burst-runs", type=int, default=500, help="runs in the ECS burst")
    parser.add_argument(
        "--file-database", action="store_true", help="the Prefect server on its default SQLite file (see world.py)"
    )
    parser.add_argument("--ecs-burst-only", action="store_true", help="only the ECS burst, both sides")
    args = parser.parse_args()
    figures = measure(
        args.quick,
        repeats=args.repeats,
        burst_runs=args.burst_runs,
        file_database=args.file_database,
        ecs_burst_only=args.ecs_burst_only,
    )
    print_figures(figures)


if __name__ == "__main__":
    main()
