"""The shapes every cloud wants: argv lists, env lists, tags and labels. Pure.

- `split_argv`: a command as an argv list; a string is split as a shell would, and a stray quote is a TemplateError
  (never a bare ValueError), whichever cloud splits it.
- `env_pairs`: `{"name": ..., "value": ...}` entries; a None value unsets (leaves out) its name.
- `string_map`: a mapping's keys and values as strings, None values left out (labels, template tags).
- `TagRules`: one cloud's rules for tag or label keys and values (how text is sanitised, lengths, first character,
  reserved prefixes) and its tag limit. `replace_forbidden` makes the common sanitiser.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from push_pools.errors import TemplateError


def split_argv(value: Any, what: str) -> list[str] | None:
    """`value` (a shell-like string or a list) as argv; None when empty. A TemplateError names `what` otherwise."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value) or None
        except ValueError as exc:
            raise TemplateError(f"{what} {value!r} cannot be split like a shell command: {exc}") from None
    if isinstance(value, list) and all(isinstance(part, str | int | float) for part in value):
        return [str(part) for part in value]
    raise TemplateError(f"{what} must be a string or a list of strings")


def env_pairs(env: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The API's env list; a None value unsets the name, so it is left out."""
    return [{"name": name, "value": value} for name, value in env.items() if value is not None]


def string_map(mapping: Any) -> dict[str, str]:
    """A mapping's items as strings, None values left out; anything but a mapping is empty."""
    if not isinstance(mapping, Mapping):
        return {}
    return {str(key): str(value) for key, value in mapping.items() if value is not None}


@dataclass(frozen=True)
class TagRules:
    """What one cloud accepts in tag (or label) keys and values."""

    sanitise: Callable[[str], str]
    """Makes a key (and, with `clean_values`, a value) of what the cloud allows."""
    max_key: int
    max_value: int
    max_tags: int
    owner: str
    """Who sets the rules, for messages: `ECS`, `Azure`, `Google Cloud`."""
    noun: str = "tags"
    clean_values: bool = True
    letter_first: str | None = None
    """Prefixed to a key that does not start with a letter (Google Cloud labels)."""
    reserved_prefix: str | None = None
    """Keys starting with this (any case) are refused (AWS's `aws:`)."""

    def clean(self, tags: Mapping[str, str]) -> dict[str, str]:
        """The tags as the cloud accepts them; empty keys are left out. Later keys win over earlier equal ones."""
        cleaned: dict[str, str] = {}
        for key, value in tags.items():
            if not key:
                continue
            clean_key = self._text(key, self.max_key)
            if self.letter_first is not None and not (clean_key[:1].isalpha()):
                clean_key = (self.letter_first + clean_key)[: self.max_key].rstrip("-_")
            if not clean_key:
                continue
            if self.reserved_prefix and clean_key.lower().startswith(self.reserved_prefix):
                raise TemplateError(
                    f"tag {key!r}: keys starting with {self.reserved_prefix!r} are reserved by {self.owner}"
                )
            cleaned[clean_key] = self._text(value, self.max_value) if self.clean_values else value[: self.max_value]
        return cleaned

    def check_count(self, tags: Mapping[str, str], where: str) -> None:
        if len(tags) > self.max_tags:
            raise TemplateError(
                f"{where} would get {len(tags)} {self.noun} (labels included); {self.owner} allows {self.max_tags}"
            )

    def _text(self, text: str, length: int) -> str:
        return self.sanitise(text)[:length]


def replace_forbidden(forbidden: str, replacement: str, *, lowercase: bool = False) -> Callable[[str], str]:
    """A sanitiser replacing each match of the `forbidden` pattern by `replacement` (after lower-casing)."""
    pattern = re.compile(forbidden)

    def sanitise(text: str) -> str:
        return pattern.sub(replacement, text.lower() if lowercase else text)

    return sanitise
