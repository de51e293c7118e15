"""Every benchmark under bench/, printed as one table: `make bench`, or

    .venv/bin/python -m bench [--quick] [--only aws,gcp] [--list]

A benchmark is a module or package directly under bench/ whose `measure(quick: bool = False) -> list[Figure]`
returns its figures (each a median over repeated runs; each comparison a ratio measured in the same run). They are
found, not listed here, so a new one joins the table by defining `measure`. `--quick` is a smoke run of about a
minute: fewer runs and repeats, so its figures are noisier. A benchmark that fails is reported after the table
and makes the exit status non-zero; the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import bench
from bench.figures import Figure, print_figures

Measure = Callable[[bool], list[Figure]]


@dataclass(frozen=True)
class Outcome:
    name: str
    figures: list[Figure]
    seconds: float
    error: str | None = None


def discover() -> dict[str, Measure]:
    """The benchmarks under bench/, by name: every module or package that defines `measure`. One that cannot be
    imported is kept, as a benchmark that fails, so the table says so instead of leaving it out unseen."""
    found: dict[str, Measure] = {}
    for module_info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda info: info.name):
        if module_info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"bench.{module_info.name}")
        except Exception as exc:  # reported when the benchmark runs
            found[module_info.name] = _failing(exc)
            continue
        measure = getattr(module, "measure", None)
        if callable(measure):
            found[module_info.name] = measure
    return found


def _failing(error: Exception) -> Measure:
    def measure(quick: bool) -> list[Figure]:
        raise error

    return measure


def select(found: dict[str, Measure], only: str | None) -> dict[str, Measure]:
    if not only:
        return found
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in found]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(found)}")
    return {name: found[name] for name in wanted}


def run(name: str, measure: Measure, quick: bool) -> Outcome:
    print(f"bench.{name}: running{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        # Whatever a benchmark prints goes to stderr with the progress lines: stdout is the table.
        with contextlib.redirect_stdout(sys.stderr):
            figures = measure(quick)
    except Exception:  # one broken benchmark must not hide the others' figures
        elapsed = time.monotonic() - started
        print(f"bench.{name}: FAILED after {elapsed:.0f} s", file=sys.stderr, flush=True)
        return Outcome(name, [], elapsed, traceback.format_exc())
    elapsed = time.monotonic() - started
    print(f"bench.{name}: {len(figures)} figures in {elapsed:.0f} s", file=sys.stderr, flush=True)
    return Outcome(name, figures, elapsed)


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.machine()}; Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute (noisier figures)")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated benchmark names, e.g. aws,gcp")
    parser.add_argument("--list", action="store_true", help="list the benchmarks found and exit")
    args = parser.parse_args(argv)
    found = discover()
    if args.list:
        print("\n".join(found))
        return 0
    chosen = select(found, args.only)
    started = time.monotonic()
    outcomes = [run(name, measure, args.quick) for name, measure in chosen.items()]
    print(f"\n{machine()}; {'quick smoke run' if args.quick else 'full run'} of {', '.join(chosen)}\n")
    print_figures([figure for outcome in outcomes for figure in outcome.figures])
    print(
        "\n" + ", ".join(f"{o.name} {o.seconds:.0f} s" for o in outcomes), f"(total {time.monotonic() - started:.0f} s)"
    )
    failed = [outcome for outcome in outcomes if outcome.error]
    for outcome in failed:
        print(f"\nbench.{outcome.name} FAILED:\n{outcome.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
