"""One shape for every benchmark's results, so `make bench` can print them as one table."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure: the median over repeats, with its target when the project set one."""

    benchmark: str
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None

    def row(self) -> tuple[str, str, str, str]:
        verdict = "" if self.met is None else ("met" if self.met else "MISSED")
        return self.benchmark, self.name, f"{self.value:,.3f} {self.unit}".strip(), f"{self.target} {verdict}".strip()


def median_of(repeats: int, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run `measure` `repeats` times; the median of each figure."""
    samples = [measure() for _ in range(repeats)]
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def print_figures(figures: Sequence[Figure]) -> None:
    rows = [("benchmark", "figure", "value", "target")] + [figure.row() for figure in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def run_alone(measure: Callable[[bool], list[Figure]], prog: str, description: str | None) -> None:
    """`python -m bench.<name> [--quick]`: the figures `python -m bench --only <name>` prints, alone."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=(description or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (fewer runs and repeats, noisier)")
    print_figures(measure(parser.parse_args().quick))
