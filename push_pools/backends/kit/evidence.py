"""Crash evidence: the end of a job's own output, bounded in size and with secret values masked.

A CRASHED message should say why, and the job's last lines usually do. `output_tail` keeps at most `TAIL_LINES`
lines and `TAIL_CHARS` characters of them (a message is stored with the run and shown in tables), and replaces each
secret value it is given by `********` before cutting, so a secret is masked even when the cut would split it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from push_pools.backends.kit.secrets import CREDENTIAL_ENV, MASK

TAIL_LINES = 20
TAIL_CHARS = 2048
MIN_SECRET_CHARS = 4
"""Shorter values are not masked: replacing every "1" or "ab" would garble the output and hide nothing."""


def executor_credentials() -> list[str]:
    """The orchestrator's credentials in this process's environment, which it hands to the runs it starts."""
    return [os.environ[name] for name in sorted(CREDENTIAL_ENV) if os.environ.get(name)]


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """The text with each secret value (longest first, so one containing another is masked whole) as `********`."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def last_lines(text: str, lines: int = TAIL_LINES, limit: int = TAIL_CHARS) -> str:
    """The end of a log: its last `lines` lines, and no more than `limit` characters of them."""
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    return tail if len(tail) <= limit else "…" + tail[-(limit - 1) :]


def output_tail(text: str, secrets: Iterable[str] = (), lines: int = TAIL_LINES, limit: int = TAIL_CHARS) -> str:
    """The job output's last lines for a crash message: masked, then bounded."""
    return last_lines(mask_secrets(text, secrets), lines, limit)
