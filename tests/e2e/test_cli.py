"""The `push-pool` CLI end to end on the embedded store: every command, its JSON output, and bad input, which
must give exit code 1 and one clear line (2 for usage errors), never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from push_pools.cli import context, main
from tests.conftest import without_aws_region


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli(Protocol):
    def __call__(self, *args: str) -> Result: ...


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("PUSH_POOL_WEBHOOK_SECRET", raising=False)

    def invoke(*args: str) -> Result:
        context.reset()
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def fails(result: Result, message: str, code: int = 1) -> None:
    assert result.code == code, (result.out, result.err)
    assert message in result.err
    assert "Traceback" not in result.err + result.out


@pytest.fixture
def pool(cli: Cli) -> str:
    ok(cli("create", "local", "--type", "process", "--concurrency-limit", "3"))
    return "local"


def test_pool_lifecycle(cli: Cli, pool: str) -> None:
    (listed,) = ok(cli("ls", "--output", "json")).json()
    assert (listed["name"], listed["type"], listed["concurrency_limit"], listed["status"]) == (
        pool,
        "process",
        3,
        "NOT_READY",
    )
    ok(cli("pause", pool))
    assert ok(cli("inspect", pool, "-o", "json")).json()["status"] == "PAUSED"
    ok(cli("resume", pool))
    ok(cli("update", pool, "--concurrency-limit", "5", "--set", "stream_output=false", "--description", "here"))
    inspected = ok(cli("inspect", pool, "-o", "json")).json()
    assert inspected["concurrency_limit"] == 5
    assert inspected["description"] == "here"
    assert inspected["base_job_template"]["variables"]["properties"]["stream_output"]["default"] is False
    assert "concurrency limit: 5" in ok(cli("inspect", pool)).out
    ok(cli("dispatch"))
    assert ok(cli("inspect", pool, "-o", "json")).json()["status"] == "READY"
    assert "local" in ok(cli("ls")).out
    ok(cli("delete", pool))
    assert ok(cli("ls", "-o", "json")).json() == []


def test_create_with_set_and_a_template_file(cli: Cli, tmp_path: Path) -> None:
    template = ok(cli("get-default-base-job-template", "--type", "process")).json()
    template["variables"]["properties"]["retries"] = {"type": "integer"}
    template["job_configuration"]["env"] = {"RETRIES": "{{ retries }}"}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    ok(
        cli(
            "create",
            "custom",
            "--type",
            "process",
            "--base-job-template",
            str(path),
            "--set",
            "retries=3",
            "--set",
            'working_dir="/tmp"',
        )
    )
    properties = ok(cli("inspect", "custom", "-o", "json")).json()["base_job_template"]["variables"]["properties"]
    assert properties["retries"]["default"] == 3
    assert properties["working_dir"]["default"] == "/tmp"
    ok(cli("get-default-base-job-template", "--type", "process", "--file", str(tmp_path / "out.json")))
    assert json.loads((tmp_path / "out.json").read_text())["job_configuration"]["command"] == "{{ command }}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "p", "--type", "kubernetes"), "unknown pool type 'kubernetes'"),
        (("create", "p", "--type", "process", "--set", "nope=1"), "declares no variable 'nope'"),
        (("create", "p", "--type", "process", "--set", "stream_output=maybe"), "'maybe' is not of type 'boolean'"),
        (("create", "p", "--type", "process", "--set", "=1"), "--set expects VAR=VALUE"),
        (("create", "p", "--type", "process", "--set", "novalue"), "--set expects VAR=VALUE"),
        (("create", "bad name!", "--type", "process"), "String should match pattern"),
        (("create", "p", "--type", "process", "--base-job-template", "/no/such/file.json"), "cannot read"),
        (("inspect", "nope"), "no work pool named 'nope'"),
        (("delete", "nope"), "no work pool named 'nope'"),
        (("pause", "nope"), "no work pool named 'nope'"),
        (("get-default-base-job-template", "--type", "nope"), "unknown pool type 'nope'"),
        (("preview", "nope"), "no work pool named 'nope'"),
        (("deployment", "create", "d", "--pool", "nope"), "no work pool named 'nope'"),
        (("run", "nope"), "no deployment named 'nope'"),
        (("runs", "inspect", "nope"), "no flow run with id 'nope'"),
        (("runs", "cancel", "nope"), "no flow run with id 'nope'"),
        (("dispatch", "--pool", "nope"), "no work pool named 'nope'"),
        (("serve",), "set PUSH_POOL_WEBHOOK_SECRET"),
    ],
)
def test_bad_input_is_one_clear_line(cli: Cli, args: tuple[str, ...], message: str) -> None:
    fails(cli(*args), message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-command",), "No such command"),
        (("create", "p"), "Missing option '--type'"),
        (("create", "p", "--type", "process", "--concurrency-limit", "-1"), "Invalid value"),
        (("ls", "--output", "xml"), "Invalid value"),
        (("runs", "ls", "--state", "SLEEPING"), "Invalid value"),
        (("package", "solaris"), "'solaris' is not one of 'aws', 'gcp', 'azure'"),
        (("package", "aws", "--architecture", "sparc"), "'sparc' is not one of 'x86_64', 'arm64'"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: tuple[str, ...], message: str) -> None:
    fails(cli(*args), message, code=2)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{not json", "is not valid JSON"),
        (
            '{"job_configuration": {"a": "{{ undeclared }}"}, "variables": {}}',
            "uses 'undeclared', which is not declared",
        ),
        ('["a list"]', "must be a JSON object"),
    ],
)
def test_bad_templates_are_refused(cli: Cli, tmp_path: Path, template: str, message: str) -> None:
    path = tmp_path / "template.json"
    path.write_text(template)
    fails(cli("create", "p", "--type", "process", "--base-job-template", str(path)), message)


def test_create_twice_needs_overwrite(cli: Cli, pool: str) -> None:
    fails(cli("create", pool, "--type", "process"), "already exists (use --overwrite)")
    ok(cli("create", pool, "--type", "process", "--overwrite"))


def test_a_pool_with_deployments_is_not_deleted(cli: Cli, pool: str) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "echo hi"))
    fails(cli("delete", pool), "still has deployments (hello)")
    ok(cli("deployment", "delete", "hello"))
    ok(cli("delete", pool))


def test_deployments(cli: Cli, pool: str, tmp_path: Path) -> None:
    variables = tmp_path / "vars.yaml"
    variables.write_text("env:\n  GREETING: hi\n")
    result = ok(
        cli(
            "deployment",
            "create",
            "hello",
            "--pool",
            pool,
            "--command",
            "echo hi",
            "-v",
            f"@{variables}",
            "--parameters",
            '{"n": 1}',
        )
    )
    assert "Saved deployment hello" in result.out
    warned = ok(cli("deployment", "create", "typo", "--pool", pool, "--command", "true", "-v", '{"memroy": 1}'))
    assert "job variable 'memroy' is not used" in warned.err
    listed = ok(cli("deployment", "ls", "-o", "json")).json()
    assert [(d["name"], d["job_variables"]) for d in listed] == [
        ("hello", {"env": {"GREETING": "hi"}}),
        ("typo", {"memroy": 1}),
    ]
    assert ok(cli("deployment", "inspect", "hello", "-o", "json")).json()["parameters"] == {"n": 1}
    assert "echo hi" in ok(cli("deployment", "ls")).out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-v", '{"stream_output": "yes"}'), "job variable 'stream_output': 'yes' is not of type 'boolean'"),
        (("-v", "{broken"), "--job-variables is not valid JSON"),
        (("-v", "[1]"), "--job-variables must be a JSON object"),
        (("-v", "@/no/such/file"), "cannot read /no/such/file"),
        (("--parameters", "7"), "--parameters must be a JSON object"),
    ],
)
def test_bad_deployment_input(cli: Cli, pool: str, args: tuple[str, ...], message: str) -> None:
    fails(cli("deployment", "create", "d", "--pool", pool, "--command", "true", *args), message)


def test_runs(cli: Cli, pool: str) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "echo hi"))
    later = ok(cli("run", "hello", "--in", "1h30m", "-o", "json")).json()
    now = ok(cli("run", "hello", "-o", "json", "-v", '{"env": {"X": "1"}}')).json()
    at = ok(cli("run", "hello", "--at", "2030-01-01T00:00:00+00:00", "-o", "json")).json()
    assert at["expected_start_time"].startswith("2030-01-01T00:00:00")
    assert ok(cli("runs", "ls", "--state", "SCHEDULED", "-o", "json")).json()[0]["id"] == at["id"]
    dispatched = ok(cli("dispatch", "-o", "json")).json()
    assert dispatched["counts"] == {"submitted": 1}
    assert dispatched["outcomes"][0]["flow_run_id"] == now["id"]
    assert ok(cli("runs", "inspect", later["id"], "-o", "json")).json()["state"]["type"] == "SCHEDULED"
    ok(cli("runs", "cancel", later["id"]))
    inspected = ok(cli("runs", "inspect", later["id"])).out
    assert "CANCELLED" in inspected
    assert "Cancelled before it started" in inspected
    assert "had already finished (CANCELLED): nothing to cancel" in ok(cli("runs", "cancel", later["id"])).out
    ok(cli("runs", "cancel", now["id"]))
    assert ok(cli("runs", "inspect", now["id"], "-o", "json")).json()["state"]["type"] == "CANCELLING"
    ok(cli("dispatch"))
    assert ok(cli("runs", "inspect", now["id"], "-o", "json")).json()["state"]["type"] == "CANCELLED"
    assert "hello-" in ok(cli("runs", "ls", "--pool", pool)).out


def test_runs_logs_show_the_job_output_and_a_crash_shows_its_cause(cli: Cli, pool: str) -> None:
    ok(cli("deployment", "create", "talk", "--pool", pool, "--command", "sh -c 'echo one; echo two; echo three'"))
    ok(cli("deployment", "create", "typo", "--pool", pool, "--command", "no-such-command-push-pools --flag"))
    talk = ok(cli("run", "talk", "-o", "json")).json()
    typo = ok(cli("run", "typo", "-o", "json")).json()
    fails(cli("runs", "logs", talk["id"]), "has no infrastructure yet (it is SCHEDULED)")
    ok(cli("dispatch"))
    assert ok(cli("runs", "logs", talk["id"], "--follow", "--interval", "0.01")).out == "one\ntwo\nthree\n"
    assert ok(cli("runs", "logs", talk["id"], "--tail", "1")).out == "three\n"
    assert ok(cli("runs", "logs", talk["id"], "-f", "-n", "2", "--interval", "0.01")).out == "two\nthree\n"
    ok(cli("runs", "logs", typo["id"], "--follow", "--interval", "0.01"))
    ok(cli("dispatch"))
    crashed = ok(cli("runs", "inspect", typo["id"], "-o", "json")).json()["state"]
    cause = "cannot start 'no-such-command-push-pools': No such file or directory"
    expected = f"Infrastructure exited with code 127: {cause}"
    assert (crashed["type"], crashed["message"]) == ("CRASHED", expected)
    fails(cli("runs", "logs", "nope"), "no flow run with id 'nope'")


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (("--in", "5m", "--at", "2030-01-01T00:00:00"), "give --at or --in, not both", 2),
        (("--in", "soon"), "invalid duration 'soon'", 2),
        (("--in", "5m3"), "invalid duration", 2),
        (("--at", "tomorrow"), "invalid time 'tomorrow'", 2),
        (("-v", '{"stream_output": 1}'), "'stream_output': 1 is not of type 'boolean'", 1),
    ],
)
def test_bad_run_input(cli: Cli, pool: str, args: tuple[str, ...], message: str, code: int) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "echo hi"))
    fails(cli("run", "hello", *args), message, code)


def test_preview_prints_the_exact_request_with_secrets_hidden(cli: Cli, pool: str) -> None:
    ok(
        cli(
            "deployment",
            "create",
            "hello",
            "--pool",
            pool,
            "--command",
            "echo 'hi there'",
            "-v",
            '{"env": {"PREFECT_API_KEY": "hunter2", "KEY_NAME": "not-a-secret"}}',
        )
    )
    request = ok(cli("preview", pool, "--deployment", "hello", "-v", '{"env": {"MODE": "test"}}')).json()
    assert request["argv"] == ["echo", "hi there"]
    assert request["env"]["MODE"] == "test"
    assert request["env"]["PREFECT_API_KEY"] == "********"
    assert request["env"]["KEY_NAME"] == "not-a-secret", "only values known to be secret are masked, not names"
    assert ok(cli("runs", "ls", "-o", "json")).json() == [], "preview creates nothing"
    ok(cli("create", "other", "--type", "process"))
    fails(cli("preview", "other", "--deployment", "hello"), "belongs to pool 'local', not 'other'")


def test_apply_is_idempotent(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    template = ok(cli("get-default-base-job-template", "--type", "process")).json()
    (tmp_path / "templates" / "t.json").write_text(json.dumps(template))
    spec = tmp_path / "push-pools.yaml"
    spec.write_text(
        "pools:\n"
        "  - {name: a, type: process, concurrency_limit: 2, set: {stream_output: false}}\n"
        "  - {name: b, type: process, base_job_template: templates/t.json, paused: true}\n"
        "deployments:\n"
        "  - {name: hello, pool: a, command: echo hi, job_variables: {env: {A: '1'}}}\n"
    )
    first = ok(cli("apply", str(spec))).out
    assert "pool a: created" in first
    assert "pool b: created" in first
    assert "deployment hello: created" in first
    second = ok(cli("apply", str(spec))).out
    assert "pool a: unchanged" in second
    assert "deployment hello: unchanged" in second
    spec.write_text(spec.read_text().replace("concurrency_limit: 2", "concurrency_limit: 4"))
    assert "pool a: updated" in ok(cli("apply", str(spec))).out
    assert ok(cli("inspect", "a", "-o", "json")).json()["concurrency_limit"] == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("pools: [{name: a, type: process, colour: red}]", "colour: Extra inputs are not permitted"),
        ("pools: [{type: process}]", "pools.0.name: Field required"),
        ("deployments: [{name: d, pool: nowhere}]", "no work pool named 'nowhere'"),
        ("pools: {a: 1}", "pools: Input should be a valid list"),
        ("pools: [\n  - broken", "is not valid YAML"),
    ],
)
def test_apply_refuses_bad_files(cli: Cli, tmp_path: Path, content: str, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(content)
    fails(cli("apply", str(spec)), message)


def test_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "push-pool"
    env = {"PUSH_POOL_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    help_text = subprocess.run([script, "--help"], capture_output=True, text=True, env=env, check=False)
    assert help_text.returncode == 0
    assert "get-default-base-job-template" in help_text.stdout
    usage = subprocess.run([script, "frobnicate"], capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 2
    error = subprocess.run([script, "inspect", "nope"], capture_output=True, text=True, env=env, check=False)
    assert (error.returncode, error.stderr.strip()) == (1, "Error: no work pool named 'nope'")


def test_ecs_preview_shows_tag_keys_and_masks_only_the_api_key(cli: Cli) -> None:
    """The preview once hid every ECS tag's `key` field (a secret-name pattern matched "key")."""
    ok(cli("create", "ecs", "--type", "ecs", "--set", "cluster=push-pools"))
    env = '{"env": {"PREFECT_API_KEY": "pnu_hunter2", "KEYBOARD": "azerty"}}'
    ok(cli("deployment", "create", "nightly", "--pool", "ecs", "--image", "flows:1", "--command", "python -m f"))
    request = ok(cli("preview", "ecs", "--deployment", "nightly", "-v", env)).json()
    tags = {tag["key"]: tag["value"] for tag in request["RunTask"]["tags"]}
    assert tags["push-pools.io/flow-run-id"] == "00000000-0000-0000-0000-000000000000"
    (override,) = request["RunTask"]["overrides"]["containerOverrides"]
    sent_env = {entry["name"]: entry["value"] for entry in override["environment"]}
    assert sent_env["PREFECT_API_KEY"] == "********"
    assert sent_env["KEYBOARD"] == "azerty"
    assert "pnu_hunter2" not in json.dumps(request)


def test_a_stray_quote_in_an_ecs_command_is_a_clear_error(cli: Cli) -> None:
    ok(cli("create", "ecs", "--type", "ecs", "--set", "cluster=push-pools"))
    ok(cli("deployment", "create", "nightly", "--pool", "ecs", "--image", "flows:1", "--command", "echo 'oops"))
    fails(cli("preview", "ecs", "--deployment", "nightly"), "cannot be split like a shell command")


def test_cloud_run_preview_reads_the_project_setting_and_shows_the_idempotency_key(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Preview once ignored PUSH_POOL_GCP_PROJECT (its error said to set it) and masked PUSH_POOL_IDEMPOTENCY_KEY."""
    monkeypatch.setenv("PUSH_POOL_GCP_PROJECT", "my-project")
    ok(cli("create", "cr", "--type", "cloud-run", "--set", "region=us-central1"))
    ok(cli("deployment", "create", "nightly", "--pool", "cr", "--image", "flows:1", "--command", "python -m f"))
    env = '{"env": {"PREFECT_API_KEY": "pnu_hunter2"}}'
    request = ok(cli("preview", "cr", "--deployment", "nightly", "-v", env)).json()
    assert request["create_job"]["parent"] == "projects/my-project/locations/us-central1"
    (override,) = request["run_job"]["overrides"]["containerOverrides"]
    sent_env = {entry["name"]: entry["value"] for entry in override["env"]}
    assert sent_env["PUSH_POOL_IDEMPOTENCY_KEY"] == "00000000-0000-0000-0000-000000000000-1"
    assert sent_env["PREFECT_API_KEY"] == "********"


@pytest.mark.parametrize("flag", [(), ("--log-format", "json")])
def test_dispatch_logs_one_json_line_per_submission_when_not_on_a_terminal(
    cli: Cli, pool: str, flag: tuple[str, ...]
) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "echo hi"))
    run = ok(cli("run", "hello", "-o", "json")).json()
    lines = [json.loads(line) for line in ok(cli("dispatch", *flag)).err.splitlines() if line.startswith("{")]
    (line,) = [line for line in lines if line.get("outcome")]
    assert (line["flow_run_id"], line["pool"], line["deployment"], line["level"]) == (run["id"], pool, "hello", "INFO")


def test_dispatch_logs_text_when_asked(cli: Cli, pool: str) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "echo hi"))
    run = ok(cli("run", "hello", "-o", "json")).json()
    err = ok(cli("dispatch", "--log-format", "text")).err
    assert f"flow_run_id={run['id']}" in err
    assert "outcome=submitted" in err


def test_a_pool_this_installation_cannot_serve_is_created_with_a_warning(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "azure.mgmt.containerinstance", None)  # type: ignore[arg-type]
    created = ok(cli("create", "far", "--type", "aci"))
    assert "cannot serve aci pools" in created.err
    assert "install push-pools[azure]" in created.err
    assert "cannot serve" in ok(cli("update", "far", "--description", "later")).err
    assert "cannot serve" not in ok(cli("create", "near", "--type", "process")).err


def test_dispatch_exits_1_when_a_pool_is_not_ready_and_inspect_says_why(
    cli: Cli, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_aws_region(monkeypatch)
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "echo hi"))
    ok(cli("run", "hello"))
    assert ok(cli("dispatch", "-o", "json")).json()["errors"] == []
    ok(cli("create", "far", "--type", "ecs"))
    ok(cli("deployment", "create", "remote", "--pool", "far", "--image", "img"))
    waiting = ok(cli("run", "remote", "-o", "json")).json()
    result = cli("dispatch", "-o", "json")
    assert result.code == 1
    (error,) = result.json()["errors"]
    assert "pool 'far' is not ready" in error
    assert "NoRegionError" in error
    assert ok(cli("runs", "inspect", waiting["id"], "-o", "json")).json()["state"]["type"] == "SCHEDULED"
    inspected = ok(cli("inspect", "far"))
    assert "NOT_READY" in inspected.out
    assert "not ready because: cannot build the ecs backend" in inspected.out
