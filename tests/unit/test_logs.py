import json
import logging
import sys

import pytest

from push_pools.logs import JsonFormatter, RunFieldsInMessage, TextFormatter, bind_correlation_id, correlation_id


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("push_pools.dispatcher", logging.INFO, __file__, 1, "submitted %s", ("r1",), None)
    record.__dict__.update(extra)
    return record


RUN = {
    "flow_run_id": "r1",
    "pool": "p",
    "deployment": "d",
    "attempt": 2,
    "infrastructure_pid": "arn:x",
    "outcome": "submitted",
}


@pytest.mark.parametrize(
    ("platform", "level_key", "correlation_key"),
    [
        ("plain", "level", "correlation_id"),
        ("aws", "level", "function_request_id"),
        ("gcp", "severity", "execution_id"),
    ],
)
def test_json_line_carries_run_fields_and_correlation_id(platform, level_key, correlation_key):
    token = bind_correlation_id("req-1")
    try:
        entry = json.loads(JsonFormatter(platform).format(_record(**RUN)))
    finally:
        correlation_id.reset(token)
    assert entry["message"] == "submitted r1"
    assert entry[level_key] == "INFO"
    assert entry[correlation_key] == "req-1"
    assert {name: entry[name] for name in RUN} == RUN


def test_gcp_labels_are_strings():
    entry = json.loads(JsonFormatter("gcp").format(_record(**RUN)))
    assert entry["logging.googleapis.com/labels"]["attempt"] == "2"


def test_absent_fields_and_correlation_id_are_left_out():
    entry = json.loads(JsonFormatter().format(_record()))
    assert set(entry) == {"timestamp", "level", "logger", "message"}


def test_values_json_cannot_encode_still_give_valid_json():
    entry = json.loads(JsonFormatter().format(_record(flow_run_id=object(), attempt={1, 2})))
    assert entry["flow_run_id"].startswith("<object object")


def test_exception_is_in_the_message():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["message"]


def test_text_line_appends_run_fields():
    assert (
        TextFormatter().format(_record(flow_run_id="r1", outcome="adopted")).endswith("flow_run_id=r1 outcome=adopted")
    )


def test_run_fields_go_into_the_message_where_only_the_message_is_kept():
    record = _record(**RUN)
    handler_filter = RunFieldsInMessage()
    assert handler_filter.filter(record)
    assert handler_filter.filter(record), "a second handler with the filter does not add them twice"
    assert record.getMessage() == (
        "submitted r1 flow_run_id=r1 pool=p deployment=d attempt=2 infrastructure_pid=arn:x outcome=submitted"
    )
    plain = _record()
    handler_filter.filter(plain)
    assert plain.getMessage() == "submitted r1"
