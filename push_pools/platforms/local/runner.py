"""Supervisor of one local process run: `python -I -S runner.py RUN_DIR -- ARGV...`.

Runs ARGV, passes SIGTERM/SIGINT on to it, and writes its exit code to RUN_DIR/exit_code (negative: killed by
that signal) so that a dispatcher other than the one that started it can read how it ended. When ARGV cannot be
started, the cause goes to RUN_DIR/start_error (and the output) and the exit code is 127, as a shell's.

It imports only the standard library and is started as a script, not as a module of the package, so a process
run pays for a bare interpreter (tens of milliseconds), not for importing push-pools and pydantic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

EXIT_CODE_FILE = "exit_code"
START_ERROR_FILE = "start_error"
FORWARDED_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -I -S runner.py RUN_DIR -- COMMAND...", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    # We start with SIGTERM and SIGINT blocked (see ProcessBackend): a cancellation that came before this point is
    # pending, not lost, and reaches the command through `forward` once both exist.
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if children and children[0].poll() is None:
            children[0].send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        children.append(subprocess.Popen(argv[2:], preexec_fn=_unblock_signals))
    except OSError as exc:
        cause = f"cannot start {argv[2]!r}: {exc.strerror}"
        print(f"push-pools: {cause}", file=sys.stderr, flush=True)
        (run_dir / START_ERROR_FILE).write_text(cause)
        _record(run_dir, 127)
        return 127
    _unblock_signals()
    exit_code = children[0].wait()
    _record(run_dir, exit_code)
    return exit_code if exit_code >= 0 else 128 - exit_code


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)


def _record(run_dir: Path, exit_code: int) -> None:
    partial = run_dir / f"{EXIT_CODE_FILE}.tmp"
    partial.write_text(str(exit_code))
    os.replace(partial, run_dir / EXIT_CODE_FILE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
