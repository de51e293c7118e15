"""Reading the CLI's values: `--set VAR=VALUE`, job variables as JSON or @FILE, times and durations."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from push_pools.cli.documents import load_document, parse_json_text
from push_pools.errors import ConfigurationError

_DURATION = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_COUNT = 2**31 - 1
"""The largest concurrency limit or --limit: any more is surely a typo (and SQLite stores at most 2**63 - 1)."""
MAX_DURATION = timedelta(days=36500)
"""The longest `--in`: a hundred years, so a start time is always a date the store can hold."""
LATEST = datetime.max.replace(tzinfo=UTC)


def parse_value(text: str) -> Any:
    """A `--set` value: JSON when it parses as JSON (`4096`, `true`, `{"a": 1}`), otherwise the text itself; JSON
    over the document limits (too deep, a number too long) is an error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
    except (ValueError, RecursionError):
        return parse_json_text(text, f"value {text[:20]!r}…")


def parse_assignments(assignments: list[str], option: str = "--set") -> dict[str, Any]:
    """`["cpu=1024", "image=python:3.11"]` → `{"cpu": 1024, "image": "python:3.11"}`."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(
                f"{option} expects {'VAR' if option == '--set' else 'KEY'}=VALUE, got {assignment!r}"
            )
        values[name.strip()] = parse_value(text)
    return values


def parse_limit(text: str) -> int | None:
    """A concurrency limit: a whole number of runs, or `none` for no limit."""
    if text.strip().lower() == "none":
        return None
    try:
        limit = int(text) if text.strip().isascii() else -1
    except ValueError:
        limit = -1
    if not 0 <= limit <= MAX_COUNT:
        raise ConfigurationError(
            f"--concurrency-limit expects a number of runs (0 to {MAX_COUNT}) or 'none', got {text!r}"
        )
    return limit


def parse_json_object(text: str | None, what: str) -> dict[str, Any]:
    """A JSON object given inline or as @FILE (JSON or YAML)."""
    if text is None:
        return {}
    document = load_document(Path(text[1:])) if text.startswith("@") else parse_json_text(text, what)
    if not isinstance(document, dict):
        raise ConfigurationError(f"{what} must be a JSON object")
    return document


def parse_duration(text: str, option: str = "--in") -> timedelta:
    """`90s`, `5m`, `1h30m`, `2d` → a timedelta of at most `MAX_DURATION`; anything else is a usage error."""
    compact = text.replace(" ", "")
    if not compact or _DURATION.sub("", compact):
        raise typer.BadParameter(f"invalid duration {text!r}; use e.g. 30s, 5m, 1h30m, 2d", param_hint=f"'{option}'")
    seconds = sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION.findall(compact))
    if seconds > MAX_DURATION.total_seconds():
        raise typer.BadParameter(f"duration {text!r} is longer than {MAX_DURATION.days}d", param_hint=f"'{option}'")
    return timedelta(seconds=seconds)


def parse_time(text: str, option: str = "--at") -> datetime:
    """An ISO 8601 time, in UTC; without a timezone it is read as local time. Its UTC year must be 1 to 9999 (what
    a datetime can hold), anything else is a usage error."""
    try:
        value = datetime.fromisoformat(text.strip())
        return (value if value.tzinfo else value.astimezone()).astimezone(UTC)
    except ValueError:
        problem = f"invalid time {text!r}; use ISO 8601, e.g. 2026-01-31T09:30:00+00:00"
    except OverflowError:
        problem = f"time {text!r} is outside the years 1 to 9999 in UTC"
    raise typer.BadParameter(problem, param_hint=f"'{option}'")


def start_time(at: str | None, in_: str | None, now: datetime) -> datetime:
    """When a run should start: `--at` a time, `--in` a duration from `now`, or `now`."""
    if at is not None and in_ is not None:
        raise typer.BadParameter("give --at or --in, not both", param_hint="'--at' / '--in'")
    if at is not None:
        return parse_time(at)
    if in_ is None:
        return now
    delay = parse_duration(in_)
    if now > LATEST - delay:
        raise typer.BadParameter(f"{in_!r} from now is after the year 9999", param_hint="'--in'")
    return now + delay
