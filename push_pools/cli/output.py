"""How the CLI prints: rich tables for people, `--output json` or `--output yaml` for programs, secrets never;
ids and names whole on one line, never folded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from push_pools.templating import SECRET_NAME

console = Console(highlight=False, emoji=False)
errors = Console(stderr=True, highlight=False, emoji=False)
"""Both print stored text (names, descriptions, messages) only through `escape` or as `Text`: never as markup."""

REDACTED = "********"


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", case_sensitive=False, help="A table for people, or JSON or YAML for programs."),
]
WHOLE_COLUMNS = frozenset({"Id", "Run", "Name", "State"})
"""Columns of ids, names and states, printed whole on one line so they can be copied; the other columns fold."""


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, default=str))


def print_document(document: Any, output: OutputFormat) -> None:
    """A document as JSON, or as YAML (block style, keys in their order): never Python's reprs."""
    if output is OutputFormat.YAML:
        typer.echo(yaml.safe_dump(json.loads(json.dumps(document, default=str)), sort_keys=False), nl=False)
    else:
        print_json(document)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=Text(title), title_justify="left")
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    for index, column in enumerate(columns):
        if column in WHOLE_COLUMNS:
            widest = max((len(row[index]) for row in cells), default=0)
            table.add_column(column, no_wrap=True, min_width=max(widest, len(column)))
        else:
            table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def warn(message: str) -> None:
    errors.print(f"[yellow]Warning:[/yellow] {escape(message)}")


def redact(document: Any) -> Any:
    """A copy with secret-looking values hidden: env entries named like keys, tokens or passwords, and any
    `secureValue`, in dicts (`{"API_KEY": ...}`) and in name/value lists (`[{"name": ..., "value": ...}]`)."""
    if isinstance(document, list):
        return [redact(item) for item in document]
    if not isinstance(document, dict):
        return document
    named = document.get("name")
    copy: dict[str, Any] = {}
    for key, value in document.items():
        secret_pair = key == "value" and isinstance(named, str) and SECRET_NAME.search(named)
        secret_key = isinstance(value, str) and (key == "secureValue" or SECRET_NAME.search(key))
        copy[key] = REDACTED if (secret_pair or secret_key) and value else redact(value)
    return copy


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`12s ago`, `3m ago`, `never`."""
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: int) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
