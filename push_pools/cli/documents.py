"""Reading the documents a user gives the CLI (`--base-job-template FILE`, `-v @FILE`, `apply FILE`, inline JSON),
within limits, so that a hostile or broken file gets one clear error instead of a hang or a crash:

- a file is at most `MAX_FILE_BYTES` and must be UTF-8 text;
- YAML aliases (`*name`, and so `<<: *name`) are refused: they are how a kilobyte expands to gigabytes;
- a document nests at most `MAX_DEPTH` levels of objects and lists;
- a number too long for Python to read (over 4,300 digits) is an error, not a crash;
- a document holds only what JSON can (YAML dates stay text; `!!binary` and `!!set` are refused).

JSON is parsed as JSON (files named `*.json` and inline text), everything else as YAML with PyYAML's safe loader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from push_pools.errors import ConfigurationError

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases and documents nested deeper than `MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Refused(f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not accepted")
        if not self.check_event(yaml.MappingStartEvent, yaml.SequenceStartEvent):
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        if self._depth >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))  # as JSON would: `2026-01-31` stays text


_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


class _Refused(Exception):
    """A document over one of the limits (turned into a ConfigurationError naming its source)."""


def load_document(path: Path) -> Any:
    """A JSON (`*.json`) or YAML file's content, within the limits."""
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigurationError(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return parse_json(text) if kind == "JSON" else _parse_yaml(text)
    except _Refused as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path} is not valid {kind}: {_one_line(exc)}") from None


def parse_json_text(text: str, what: str) -> Any:
    """Inline JSON (`-v '{...}'`), within the limits; `what` names it in the error."""
    try:
        return parse_json(text)
    except _Refused as exc:
        raise ConfigurationError(f"{what}: {exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{what} is not valid JSON: {_one_line(exc)}") from None


def parse_json(text: str) -> Any:
    """JSON text within the depth limit: `_Refused` when over it, ValueError when not JSON (or a number too long)."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels") from None
    _check_shape(document)
    return document


def _parse_yaml(text: str) -> Any:
    document = yaml.load(text, Loader=_BoundedLoader)
    _check_shape(document)
    return document


def _check_shape(document: Any) -> None:
    if _deeper_than(document, MAX_DEPTH):
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
    stray = next(_not_json(document), None)
    if stray is not None:
        raise _Refused(f"holds a {type(stray).__name__} value, which JSON cannot hold")


def _not_json(node: Any) -> Iterator[Any]:
    pending = [node]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        elif not isinstance(node, str | int | float | bool | type(None)):
            yield node


def _deeper_than(document: Any, limit: int) -> bool:
    pending = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                pending.append((child, depth + 1))
    return False


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
