"""Reading Terraform directories statically with python-hcl2 (there is no terraform binary here): their blocks, the
names they declare, and the references their expressions make."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)

_VAR = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
_LOCAL = re.compile(r"\blocal\.([A-Za-z_][\w-]*)")
_MODULE = re.compile(r"\bmodule\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?")
_DATA = re.compile(r"\bdata\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)")
_RESOURCE = re.compile(r"(?<![\w.])([a-z][a-z0-9]*)_([a-z0-9_]+)\.([A-Za-z_][\w-]*)")


def directories() -> list[Path]:
    """Every module and example: new ones (other clouds', later ones) are picked up by themselves."""
    return sorted(p for kind in ("modules", "examples") for p in (TERRAFORM / kind).glob("*") if p.is_dir())


@dataclass(frozen=True)
class TerraformDir:
    path: Path
    blocks: dict[str, list[Any]]

    @property
    def is_module(self) -> bool:
        return self.path.parent.name == "modules"

    def named(self, kind: str) -> dict[str, Any]:
        """`variable`, `output`, `module`, `locals` (merged): name → body."""
        return {name: body for block in self.blocks.get(kind, []) for name, body in block.items()}

    def typed(self, kind: str) -> dict[tuple[str, str], Any]:
        """`resource` or `data`: (type, name) → body."""
        return {
            (type_, name): body
            for block in self.blocks.get(kind, [])
            for type_, named in block.items()
            for name, body in named.items()
        }

    def providers(self) -> set[str]:
        """Provider names: the required providers, and the prefixes of every resource and data type used."""
        names = {name for block in self.blocks.get("terraform", []) for entry in block.get("required_providers", [])
                 for name in entry}  # fmt: skip
        names |= {type_.split("_", 1)[0] for kind in ("resource", "data") for type_, _ in self.typed(kind)}
        return names

    def expressions(self) -> Iterator[str]:
        """Every string of every block that holds an expression (`${...}`)."""
        for kind, blocks in self.blocks.items():
            if kind == "terraform":
                continue
            for text in _strings(blocks):
                if "${" in text:
                    yield text


@cache
def load(path: Path) -> TerraformDir:
    merged: dict[str, list[Any]] = {}
    for file in sorted(path.glob("*.tf")):
        with file.open() as handle:
            for kind, blocks in hcl2.load(handle, serialization_options=OPTIONS).items():
                merged.setdefault(kind, []).extend(blocks)
    return TerraformDir(path, merged)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def unresolved_references(directory: TerraformDir) -> list[str]:
    """References to variables, locals, modules, data sources and resources the directory does not declare."""
    declared = {
        "var": set(directory.named("variable")),
        "local": set(directory.named("locals")),
        "module": set(directory.named("module")),
        "data": {f"{t}.{n}" for t, n in directory.typed("data")},
        "resource": {f"{t}.{n}" for t, n in directory.typed("resource")},
    }
    providers = directory.providers()
    missing = []
    for text in directory.expressions():
        missing += [f"var.{n}" for n in _VAR.findall(text) if n not in declared["var"]]
        missing += [f"local.{n}" for n in _LOCAL.findall(text) if n not in declared["local"]]
        missing += [f"module.{n}" for n, _ in _MODULE.findall(text) if n not in declared["module"]]
        missing += [f"data.{t}.{n}" for t, n in _DATA.findall(text) if f"{t}.{n}" not in declared["data"]]
        for prefix, rest, name in _RESOURCE.findall(text):
            reference = f"{prefix}_{rest}.{name}"
            if prefix in providers and reference not in declared["resource"]:
                missing.append(reference)
    return sorted(set(missing))


def module_output_references(directory: TerraformDir) -> set[tuple[str, str]]:
    """(module call, output) pairs the directory reads."""
    return {(call, output) for text in directory.expressions() for call, output in _MODULE.findall(text) if output}


def has_default(variable: dict[str, Any]) -> bool:
    return "default" in variable
