"""The side of `bench.footprint` that runs in the fresh process: import an entry point, hand it events, report.

Standard library only, so that it adds (almost) nothing to the peak RSS and the modules it reports.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

Load = Callable[[str], Callable[[Any], Any]]
"""Given the scenario, import the entry point (timed) and return what calls it with one event."""
Events = Callable[[str, list[str]], list[Any]]
"""Given the scenario and the ids of due runs, the events the platform would hand the function."""


def peak_rss_kib() -> int:
    """This process's peak resident set. Linux's VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child of a
    big parent would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(load: Load, events: Events) -> None:
    """`python -m bench.<cloud>.invoke <scenario> <run id>...`: one JSON line on stdout."""
    scenario, run_ids = sys.argv[1], sys.argv[2:]
    # Modules loaded at start-up are the interpreter's (and .pth files'), not the entry point's.
    at_start = set(sys.modules)
    started = time.perf_counter()
    call = load(scenario)
    imported = time.perf_counter()
    answers = [call(event) for event in events(scenario, run_ids)]
    handled = time.perf_counter()
    report = {
        "import_ms": (imported - started) * 1000,
        "handle_ms": (handled - imported) * 1000,
        "rss_kb": peak_rss_kib(),
        "modules": sorted(set(sys.modules) - at_start),
        "answers": [str(answer)[:300] for answer in answers],
    }
    print(json.dumps(report))
