"""Property-based: whatever a user or a network sends, rendering and payload parsing raise only our own errors."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from push_pools.errors import AuthenticationError, PayloadError, TemplateError
from push_pools.templating import (
    check_base_job_template,
    merge_job_variables,
    render_job_configuration,
    validate_job_variables,
)
from push_pools.triggers.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, TOKEN_HEADER, WebhookAuthenticator, sign
from push_pools.triggers.payloads import parse_request

names = st.sampled_from(
    ["cpu", "env", "image", "net", "x", "$HOME", "a.b", "net.subnets[0]", "l[1]", "prefect.blocks.x"]
)
placeholder_text = st.builds(
    lambda before, name, after: f"{before}{{{{ {name} }}}}{after}", st.text(max_size=5), names, st.text(max_size=5)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
template_nodes = st.recursive(
    json_values | placeholder_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=16,
)


@given(
    st.dictionaries(st.text(max_size=8), template_nodes, max_size=5), st.dictionaries(names, json_values, max_size=5)
)
@settings(max_examples=300, deadline=None)
def test_rendering_never_raises_anything_but_template_errors(
    job_configuration: dict[str, Any], values: dict[str, Any]
) -> None:
    template = {
        "job_configuration": job_configuration,
        "variables": {"properties": {n: {} for n in ("cpu", "env", "x")}},
    }
    rendered = render_job_configuration(template, values, environ={"HOME": "/h"})
    json.dumps(rendered)  # always serialisable: it is sent to an API as JSON
    with contextlib.suppress(TemplateError):
        check_base_job_template(template)


@given(json_values, st.dictionaries(st.text(max_size=6), json_values, max_size=4))
@settings(max_examples=200, deadline=None)
def test_validation_never_raises_anything_but_template_errors(schema: Any, values: dict[str, Any]) -> None:
    with contextlib.suppress(TemplateError):
        validate_job_variables({"variables": schema if isinstance(schema, dict) else {"type": "object"}}, values)


@given(st.lists(st.dictionaries(st.sampled_from(["env", "cpu", "x"]), json_values, max_size=3) | st.none(), max_size=4))
def test_merging_never_raises(layers: list[dict[str, Any] | None]) -> None:
    merged = merge_job_variables(*layers)
    for layer in layers:
        for name in layer or {}:
            assert name in merged


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
@settings(max_examples=400, deadline=None)
def test_payload_parsing_never_raises_anything_but_payload_errors(body: bytes) -> None:
    with contextlib.suppress(PayloadError):
        parse_request(body)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "flow_run_id": st.uuids().map(str) | json_values,
            "action": st.sampled_from(["submit", "cancel", "tick", "other"]) | json_values,
            "event": st.sampled_from(["prefect.flow-run.Scheduled", "prefect.flow-run.Cancelling", "x"]) | json_values,
            "pool": st.text(max_size=70) | json_values,
            "resource": st.fixed_dictionaries({"prefect.resource.id": st.text(max_size=60) | json_values})
            | json_values,
        },
    )
)
@settings(max_examples=400, deadline=None)
def test_structured_payloads_never_raise_anything_but_payload_errors(document: dict[str, Any]) -> None:
    with contextlib.suppress(PayloadError):
        parse_request(json.dumps(document))


header_values = st.text(max_size=30) | st.integers().map(str) | st.sampled_from(["\u00b2", "9" * 5000, "\udc80"])


@given(
    st.dictionaries(
        st.sampled_from([TOKEN_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, "Authorization", "X-Other"]) | st.text(),
        header_values,
        max_size=4,
    ),
    st.binary(max_size=50),
    st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_credentials_checks_never_raise_anything_but_authentication_errors(
    headers: dict[str, str], body: bytes, signed: bool
) -> None:
    authenticator = WebhookAuthenticator("secret", clock=lambda: 1_800_000_000)
    if signed:
        headers = {**sign("secret", body, 1_800_000_000), **headers}
    with contextlib.suppress(AuthenticationError):
        authenticator.verify(headers, body)
