"""A `variables` schema that would fail at run time is refused when the template is checked, and the dispatcher's
validation of job variables, which shares its validator, raises only our own errors on it."""

from __future__ import annotations

from typing import Any

import pytest

from push_pools.errors import TemplateError
from push_pools.templating import check_base_job_template, validate_job_variables

CREDS = {"type": "object", "properties": {"region": {"type": "string"}}}
TREE = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
}


def template(variables: dict[str, Any]) -> dict[str, Any]:
    return {"job_configuration": {"x": "{{ x }}"}, "variables": variables}


REFUSED = [
    ({"properties": {"x": {"$ref": "#/definitions/Missing"}}}, "$ref '#/definitions/Missing' that points to nothing"),
    (
        {"properties": {"x": {"type": "object", "properties": {"y": {"anyOf": [{"$ref": "#/$defs/Gone"}]}}}}},
        "$ref '#/$defs/Gone' that points to nothing",
    ),
    (
        {"properties": {"x": {"$ref": "https://example.com/creds.json"}}},
        "points to another document, which is never fetched",
    ),
    (
        {
            "properties": {"x": {"$ref": "#/definitions/A"}},
            "definitions": {"A": {"$ref": "#/definitions/B"}, "B": {"allOf": [{"$ref": "#/definitions/A"}]}},
        },
        "cycle of $refs",
    ),
    ({"$ref": "#", "properties": {"x": {}}}, "cycle of $refs"),
    ({"properties": {"x": {"$ref": "#/properties/x"}}}, "cycle of $refs"),
    ({"properties": {"x": True}}, "variable 'x' is described by true, not a JSON schema object"),
    ({"properties": {"x": False}}, "variable 'x' is described by false, not a JSON schema object"),
    ({"properties": {"x": "string"}}, "not a valid JSON schema at 'properties.x'"),
    ({"properties": {"x": {"type": "strnig"}}}, "not a valid JSON schema at 'properties.x.type'"),
    ({"properties": {"x": {}}, "definitions": {"A": 5}}, "not a valid JSON schema at 'definitions.A'"),
    ({"$schema": ["not", "a", "uri"], "properties": {"x": {}}}, "'$schema' must be a URI"),
    (
        {"properties": {"x": {"type": "integer", "default": "two"}}},
        "with its own defaults alone, the template breaks its 'variables' schema: job variable 'x'",
    ),
    ({"type": "array", "properties": {"x": {}}}, "with its own defaults alone"),
]


@pytest.mark.parametrize(("variables", "message"), REFUSED, ids=[message for _, message in REFUSED])
def test_a_schema_that_would_fail_at_run_time_is_refused_when_checked(variables: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=r"^[^\n]+$") as refused:
        check_base_job_template(template(variables))
    assert message in str(refused.value)


@pytest.mark.parametrize(("variables", "message"), REFUSED[:6], ids=[message for _, message in REFUSED[:6]])
def test_validating_job_variables_on_such_a_schema_raises_a_template_error(
    variables: dict[str, Any], message: str
) -> None:
    """A template stored before these checks, or read from Prefect's API, fails the run with our own error."""
    with pytest.raises(TemplateError, match=r"^[^\n]+$") as refused:
        validate_job_variables(template(variables), {"x": {"y": "v"}})
    assert message in str(refused.value)


ACCEPTED = [
    {"properties": {"x": {"$ref": "#/definitions/Creds"}}, "definitions": {"Creds": CREDS}},
    {"properties": {"x": {"allOf": [{"$ref": "#/$defs/Creds"}]}}, "$defs": {"Creds": CREDS}},
    {"properties": {"x": {"$ref": "#/$defs/Node"}}, "$defs": {"Node": TREE}},
    {"properties": {"x": {"type": "object", "properties": {"parent": {"$ref": "#"}}}}},
    {"properties": {"x": {"$ref": "#creds"}}, "$defs": {"Creds": CREDS | {"$anchor": "creds"}}},
    {
        "$id": "https://push-pools.example/variables",
        "properties": {"x": {"$ref": "https://push-pools.example/variables#/$defs/Creds"}},
        "$defs": {"Creds": CREDS},
    },
    {"properties": {"x": {"type": "object", "additionalProperties": False, "properties": {"y": True}}}},
    {"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"x": {"$ref": "#/definitions/C"}}}
    | {"definitions": {"C": CREDS}},
]


@pytest.mark.parametrize("variables", ACCEPTED)
def test_local_references_recursion_that_steps_into_the_value_and_boolean_subschemas_are_accepted(
    variables: dict[str, Any],
) -> None:
    check_base_job_template(template(variables))
    validate_job_variables(template(variables), {"x": {}})
