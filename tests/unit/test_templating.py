"""Every templating rule, as a table: rendering, defaults, merging, validation and template checks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from push_pools.errors import JobVariablesError, TemplateError
from push_pools.templating import (
    check_base_job_template,
    expand_dotted_keys,
    find_placeholders,
    lookup,
    merge_job_variables,
    refuse_prefect_references,
    render_job_configuration,
    schema_defaults,
    set_variable_defaults,
    unused_job_variables,
    validate_job_variables,
)


def render(job_configuration: Any, values: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    return render_job_configuration({"job_configuration": {"x": job_configuration}}, values, environ=environ).get(
        "x", "<removed>"
    )


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        # a string that is exactly one placeholder takes the value's own type
        ("{{ cpu }}", {"cpu": 1024}, 1024),
        ("{{ ratio }}", {"ratio": 0.5}, 0.5),
        ("{{ flag }}", {"flag": False}, False),
        ("{{ env }}", {"env": {"A": "1"}}, {"A": "1"}),
        ("{{ subnets }}", {"subnets": ["a", "b"]}, ["a", "b"]),
        ("{{ nothing }}", {"nothing": None}, None),
        ("{{ name }}", {"name": "job"}, "job"),
        ("{{cpu}}", {"cpu": 1}, 1),
        ("{{    cpu    }}", {"cpu": 1}, 1),
        # a missing value removes the key
        ("{{ cpu }}", {}, "<removed>"),
        # placeholders inside a longer string become text
        ("cpu={{ cpu }}", {"cpu": 1024}, "cpu=1024"),
        ("{{ a }}-{{ b }}", {"a": "x", "b": 2}, "x-2"),
        ("flag {{ flag }}", {"flag": True}, "flag True"),
        ("env {{ env }}", {"env": {"A": "1"}}, 'env {"A": "1"}'),
        ("list {{ l }}", {"l": [1, 2]}, "list [1, 2]"),
        ("none [{{ n }}]", {"n": None}, "none []"),
        ("missing [{{ m }}]", {}, "missing []"),
        (" {{ cpu }}", {"cpu": 1}, " 1"),
        # dotted and indexed paths
        ("{{ net.subnets }}", {"net": {"subnets": ["s1"]}}, ["s1"]),
        ("{{ net.subnets[0] }}", {"net": {"subnets": ["s1", "s2"]}}, "s1"),
        ("{{ net.subnets[1] }}", {"net": {"subnets": ["s1", "s2"]}}, "s2"),
        ("{{ a.b[0].c }}", {"a": {"b": [{"c": 7}]}}, 7),
        ("{{ net.subnets[5] }}", {"net": {"subnets": ["s1"]}}, "<removed>"),
        ("{{ net.missing }}", {"net": {}}, "<removed>"),
        ("{{ net.deep }}", {"net": "not a dict"}, "<removed>"),
        ("id-{{ a.b }}", {"a": {"b": "x"}}, "id-x"),
        # values are never rendered again
        ("{{ cmd }}", {"cmd": "echo {{ secret }}", "secret": "leak"}, "echo {{ secret }}"),
        ("{{ a }} {{ b }}", {"a": "{{ b }}", "b": "B"}, "{{ b }} B"),
        # non-strings pass through untouched
        (42, {}, 42),
        (None, {}, None),
        (True, {}, True),
        # text without placeholders is left alone
        ("plain {text}", {}, "plain {text}"),
    ],
)
def test_render_string_rules(template: Any, values: dict[str, Any], expected: Any) -> None:
    assert render(template, values) == expected


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ({"a": "{{ x }}", "b": "{{ y }}"}, {"x": 1}, {"a": 1}),
        (["{{ x }}", "{{ y }}", "fixed"], {"y": 2}, [2, "fixed"]),
        ([{"name": "{{ n }}", "value": "{{ v }}"}], {"n": "A"}, [{"name": "A"}]),
        ({"outer": {"inner": ["{{ x }}"]}}, {}, {"outer": {"inner": []}}),
        ({"a": "{{ x }}"}, {"x": {"nested": "{{ y }}"}, "y": 1}, {"a": {"nested": "{{ y }}"}}),
    ],
)
def test_render_nested_structures(template: Any, values: dict[str, Any], expected: Any) -> None:
    assert render(template, values) == expected


def test_env_placeholders_read_the_given_environment_only() -> None:
    assert render("{{ $HOME_DIR }}", {}, {"HOME_DIR": "/home/x"}) == "/home/x"
    assert render("path={{ $HOME_DIR }}", {}, {}) == "path="
    assert render("{{ $NOT_SET }}", {}) == "<removed>"


def test_render_requires_a_job_configuration() -> None:
    with pytest.raises(TemplateError, match="job_configuration"):
        render_job_configuration({"variables": {}}, {})


@pytest.mark.parametrize(
    ("values", "path", "expected"),
    [
        ({"a": 1}, "a", 1),
        ({"a": {"b": [0, {"c": None}]}}, "a.b[1].c", None),
        ({"a": [[1, 2]]}, "a[0][1]", 2),
        ({"a": {"b": 1}}, "a.b.c", "MISSING"),
        ({}, "a", "MISSING"),
    ],
)
def test_lookup(values: dict[str, Any], path: str, expected: Any) -> None:
    result = lookup(values, path)
    assert (repr(result) if expected == "MISSING" else result) == expected


def test_find_placeholders_walks_everything() -> None:
    template = {"a": ["{{ x }}", {"b": "pre {{ y.z[0] }} {{ $E }}"}], "c": 3}
    assert find_placeholders(template) == {"x", "y.z[0]", "$E"}


def test_schema_defaults_skip_null_defaults() -> None:
    template = {
        "variables": {
            "properties": {
                "cpu": {"type": "integer", "default": 256},
                "image": {"type": "string", "default": None},
                "flag": {"type": "boolean", "default": False},
                "name": {"type": "string"},
            }
        }
    }
    assert schema_defaults(template) == {"cpu": 256, "flag": False}


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        # later layers win: pool defaults < deployment < run
        (({"cpu": 1}, {"cpu": 2}, {"cpu": 3}), {"cpu": 3}),
        (({"cpu": 1}, {"cpu": 2}, {}), {"cpu": 2}),
        (({"cpu": 1}, None, None), {"cpu": 1}),
        # env merges key by key
        (
            ({"env": {"A": "1", "B": "1"}}, {"env": {"B": "2"}}, {"env": {"C": "3"}}),
            {"env": {"A": "1", "B": "2", "C": "3"}},
        ),
        # a later layer can unset a name by giving it None
        (({"env": {"A": "1"}}, {"env": {"A": None}}), {"env": {"A": None}}),
        # every other key is replaced whole, dicts included
        (({"net": {"a": 1, "b": 2}}, {"net": {"b": 3}}), {"net": {"b": 3}}),
        (({"labels": {"a": "1"}}, {"labels": {"b": "2"}}), {"labels": {"b": "2"}}),
        (({"subnets": ["a"]}, {"subnets": ["b"]}), {"subnets": ["b"]}),
        # env that is not a dict on one side is replaced, not merged
        (({"env": "weird"}, {"env": {"A": "1"}}), {"env": {"A": "1"}}),
    ],
)
def test_merge_job_variables(layers: tuple[dict[str, Any] | None, ...], expected: dict[str, Any]) -> None:
    assert merge_job_variables(*layers) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"env.FOO": "1"}, {"env": {"FOO": "1"}}),
        ({"env.FOO": "1", "env": {"BAR": "2"}}, {"env": {"FOO": "1", "BAR": "2"}}),
        ({"env.FOO": "dotted", "env": {"FOO": "nested"}}, {"env": {"FOO": "nested"}}),
        ({"a.b.c": 1, "a.b.d": 2}, {"a": {"b": {"c": 1, "d": 2}}}),
        ({"a.b": 1, "a": 5}, {"a": 5}),
        ({"cpu": 1}, {"cpu": 1}),
    ],
)
def test_dotted_keys_expand_like_prefects(values: dict[str, Any], expected: dict[str, Any]) -> None:
    assert expand_dotted_keys(values) == expected


def test_a_literal_env_dict_in_the_template_takes_the_env_variable() -> None:
    template = {"job_configuration": {"env": {"FIXED": "yes", "NAME": "{{ name }}"}}, "variables": {}}
    rendered = render_job_configuration(template, {"name": "n", "env": {"EXTRA": "{{ name }}"}})
    assert rendered["env"] == {"FIXED": "yes", "NAME": "n", "EXTRA": "{{ name }}"}
    assert unused_job_variables(template, ["env"]) == []


def test_merge_does_not_modify_its_inputs() -> None:
    deployment = {"env": {"A": "1"}}
    merge_job_variables(deployment, {"env": {"B": "2"}})
    assert deployment == {"env": {"A": "1"}}


SCHEMA_TEMPLATE: dict[str, Any] = {
    "job_configuration": {"cpu": "{{ cpu }}", "image": "{{ image }}", "net": "{{ network.subnets }}"},
    "variables": {
        "type": "object",
        "required": ["image"],
        "properties": {
            "cpu": {"type": "integer", "minimum": 256},
            "image": {"type": "string"},
            "network": {
                "type": "object",
                "properties": {"subnets": {"type": "array", "items": {"type": "string"}}},
            },
            "size": {"enum": ["small", "large"]},
        },
    },
}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"image": "x", "cpu": "abc"}, "job variable 'cpu': 'abc' is not of type 'integer' (rule: type)"),
        ({"image": "x", "cpu": 1}, "job variable 'cpu': 1 is less than the minimum of 256 (rule: minimum)"),
        ({"cpu": 512}, "'image' is a required job variable"),
        ({"image": "x", "network": {"subnets": [1]}}, "job variable 'network.subnets[0]': 1 is not of type 'string'"),
        (
            {"image": "x", "size": "medium"},
            "job variable 'size': 'medium' is not one of ['small', 'large'] (rule: enum)",
        ),
        ({"image": 5}, "job variable 'image': 5 is not of type 'string'"),
    ],
)
def test_validation_messages_name_the_variable_and_the_rule(values: dict[str, Any], message: str) -> None:
    with pytest.raises(JobVariablesError) as caught:
        validate_job_variables(SCHEMA_TEMPLATE, values)
    assert message in str(caught.value)


def test_validation_reports_every_problem() -> None:
    with pytest.raises(JobVariablesError) as caught:
        validate_job_variables(SCHEMA_TEMPLATE, {"cpu": "x", "size": "huge"})
    assert len(caught.value.problems) == 3


def test_partial_validation_ignores_required_but_not_types() -> None:
    validate_job_variables(SCHEMA_TEMPLATE, {"cpu": 512}, partial=True)
    with pytest.raises(JobVariablesError, match="cpu"):
        validate_job_variables(SCHEMA_TEMPLATE, {"cpu": "x"}, partial=True)


def test_valid_values_pass() -> None:
    validate_job_variables(SCHEMA_TEMPLATE, {"image": "python", "cpu": 1024, "network": {"subnets": ["s"]}})


def test_schemas_with_definitions_and_refs_validate() -> None:
    template = {
        "job_configuration": {"creds": "{{ creds }}"},
        "variables": {
            "type": "object",
            "properties": {"creds": {"allOf": [{"$ref": "#/definitions/Creds"}]}},
            "definitions": {"Creds": {"type": "object", "properties": {"region": {"type": "string"}}}},
        },
    }
    check_base_job_template(template)
    validate_job_variables(template, {"creds": {"region": "eu-west-1"}})
    with pytest.raises(JobVariablesError, match=r"creds\.region"):
        validate_job_variables(template, {"creds": {"region": 1}})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("not a dict", "must be a JSON object"),
        ({"variables": {}}, "'job_configuration' must be a JSON object"),
        ({"job_configuration": [], "variables": {}}, "'job_configuration' must be a JSON object"),
        ({"job_configuration": {}, "variables": []}, "'variables' must be a JSON schema object"),
        ({"job_configuration": {}, "variables": {"properties": []}}, "'variables.properties' must be a JSON object"),
        ({"job_configuration": {}, "variables": {}, "extra": 1}, "unknown base job template keys: extra"),
        ({"job_configuration": {"a": "{{ nope }}"}, "variables": {}}, "uses 'nope', which is not declared"),
        (
            {"job_configuration": {"a": "x-{{ net.subnets[0] }}"}, "variables": {"properties": {"other": {}}}},
            "uses 'net', which is not declared",
        ),
        (
            {"job_configuration": {"a": "{{ prefect.blocks.aws-credentials.prod }}"}, "variables": {}},
            "refers to a Prefect block or variable",
        ),
        ({"job_configuration": {}, "variables": {"type": "no-such-type"}}, "not a valid JSON schema"),
    ],
)
def test_unusable_templates_are_refused(template: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        check_base_job_template(template)


def test_declared_placeholders_and_env_placeholders_are_accepted() -> None:
    check_base_job_template(
        {
            "job_configuration": {"a": "{{ net.subnets[0] }}", "b": "{{ $HOME }}", "c": ["{{ x }}"]},
            "variables": {"properties": {"net": {}, "x": {}}},
        }
    )


def test_unused_job_variables_are_reported() -> None:
    assert unused_job_variables(SCHEMA_TEMPLATE, ["cpu", "image", "size", "typo"]) == ["size", "typo"]
    assert unused_job_variables(SCHEMA_TEMPLATE, ["network"]) == []


def test_set_variable_defaults() -> None:
    updated = set_variable_defaults(SCHEMA_TEMPLATE, {"cpu": 2048, "image": "python:3.12"})
    assert updated["variables"]["properties"]["cpu"]["default"] == 2048
    assert "default" not in SCHEMA_TEMPLATE["variables"]["properties"]["cpu"]
    assert schema_defaults(updated) == {"cpu": 2048, "image": "python:3.12"}


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"cpuu": 1}, TemplateError, "declares no variable 'cpuu'"),
        ({"cpu": "lots"}, JobVariablesError, "'lots' is not of type 'integer'"),
    ],
)
def test_set_variable_defaults_refuses_bad_values(values: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        set_variable_defaults(SCHEMA_TEMPLATE, values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"env": {"KEY": "{{ prefect.blocks.secret.api-key }}"}}, "job variable 'env.KEY' refers to a Prefect block"),
        ({"image": "repo:{{ prefect.variables.tag }}"}, "job variable 'image' refers to a Prefect block or variable"),
        ({"creds": {"$ref": {"block_document_id": "x"}}}, "job variable 'creds' refers to a Prefect block"),
        ({"nets": [{"id": "{{ prefect.variables.net }}"}]}, "job variable 'nets[0].id'"),
    ],
)
def test_prefect_references_in_job_variables_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        refuse_prefect_references(values)


def test_ordinary_values_with_braces_pass() -> None:
    refuse_prefect_references({"command": "echo {{ x }}", "env": {"A": "{not a placeholder}"}, "n": 1})
