"""The AWS module as the tests read it: its function policy's statements, its resources and locals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.terraform.hcl_tools import TERRAFORM, TerraformDir, load

MODULE_DIR = TERRAFORM / "modules" / "aws"


def module() -> TerraformDir:
    return load(MODULE_DIR)


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: tuple[str, ...]
    resources: Any
    conditions: tuple[dict[str, Any], ...]
    only_when: str | None
    """The `for_each` of a dynamic statement: granted only under that condition."""


def policy_statements(document: str) -> list[Statement]:
    """The statements of `data.aws_iam_policy_document.<document>`, dynamic ones included."""
    body = module().typed("data")[("aws_iam_policy_document", document)]
    found = [(statement, None) for statement in body.get("statement", [])]
    for dynamic in body.get("dynamic", []):
        block = dynamic["statement"]
        found += [(content, str(block["for_each"])) for content in block["content"]]
    return [
        Statement(
            sid=str(statement.get("sid", "")),
            actions=tuple(statement["actions"]),
            resources=statement.get("resources"),
            conditions=tuple(statement.get("condition", [])),
            only_when=only_when,
        )
        for statement, only_when in found
    ]


def granted_actions(document: str = "function") -> set[str]:
    return {action for statement in policy_statements(document) for action in statement.actions}


def resource(kind: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = module().typed("resource")[(kind, name)]
    return body


def locals_() -> dict[str, Any]:
    return module().named("locals")
