"""Hostile and clumsy input on the `push-pool` CLI, on a real store file: every bad value is refused with one
clear line (exit code 2 for a bad option value, 1 otherwise), nothing is half-applied, and nothing stored can
break a later command."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from push_pools.backends import default_base_job_template
from push_pools.cli import context, main, output
from push_pools.errors import OrchestratorError
from push_pools.models import Deployment, StateType, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from tests.e2e.test_cli import Cli, cli, fails, ok, pool

__all__ = ["cli", "pool"]  # fixtures


@pytest.fixture
def deployment(cli: Cli, pool: str) -> str:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "echo hi"))
    return "hello"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--at", "9999-12-31T23:59:59-12:00"), "outside the years 1 to 9999 in UTC"),
        (("--at", "0001-01-01T00:30:00+01:00"), "outside the years 1 to 9999 in UTC"),
        (("--at", ""), "invalid time ''"),
        (("--at", "٢٠٢٦-01-01"), "invalid time"),
        (("--in", ""), "invalid duration ''"),
        (("--in", "9999999d"), "longer than 36500d"),
        (("--in", "1" * 400 + "s"), "invalid duration"),
    ],
)
def test_a_start_time_out_of_range_or_empty_is_a_usage_error(
    cli: Cli, deployment: str, args: tuple[str, ...], message: str
) -> None:
    result = cli("run", deployment, *args)
    fails(result, message, code=2)
    assert "Unexpected error" not in result.err
    assert ok(cli("runs", "ls", "-o", "json")).json() == []


def test_the_store_refuses_a_time_it_could_not_read_back(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store.db")
    store.save_pool(_pool())
    found = store.save_deployment(_deployment())
    last_instant = datetime(9999, 12, 31, 23, 59, 59, 999999, UTC)  # its float timestamp rounds up to year 10000
    with pytest.raises(OrchestratorError, match="outside the years 1 to 9999"):
        store.create_run(found, last_instant, now=datetime.now(UTC))
    assert store.list_runs() == []


def test_a_run_stored_out_of_range_by_an_older_version_breaks_no_command(cli: Cli, deployment: str) -> None:
    ok(cli("run", deployment))
    poisoned = ok(cli("run", deployment, "--in", "1d", "-o", "json")).json()["id"]
    with sqlite3.connect(Settings().store_path) as db:  # as `--at 9999-12-31T23:59:59-12:00` once stored it
        db.execute("UPDATE flow_runs SET expected_start_time = 253402343999.0 WHERE id = ?", (poisoned,))
    assert len(ok(cli("runs", "ls", "-o", "json")).json()) == 2
    assert poisoned in ok(cli("runs", "ls")).out
    assert ok(cli("runs", "inspect", poisoned, "-o", "json")).json()["expected_start_time"].startswith("9999-12-31")
    ok(cli("runs", "inspect", poisoned))
    ok(cli("runs", "cancel", poisoned))
    assert ok(cli("runs", "inspect", poisoned, "-o", "json")).json()["state"]["type"] == "CANCELLED"


def _pool() -> WorkPool:
    return WorkPool(name="local", type="process", base_job_template=default_base_job_template("process"))


def _deployment() -> Deployment:
    return Deployment(id="d-1", name="hello", pool_name="local", command="echo hi")


MARKUP = "[/oops] [bold]kept[/bold] :smile:"


def test_stored_text_is_printed_as_it_is_never_read_as_markup(
    cli: Cli, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.console, "width", 200)  # whole cells, whatever the worker's terminal
    ok(cli("update", pool, "--description", MARKUP))
    assert MARKUP in ok(cli("inspect", pool)).out
    ok(cli("deployment", "create", "odd", "--pool", pool, "--command", "[/x] [bold]cmd[/bold]"))
    assert "[/x] [bold]cmd[/bold]" in ok(cli("deployment", "ls")).out
    assert "[/x] [bold]cmd[/bold]" in ok(cli("deployment", "inspect", "odd")).out
    run_id = ok(cli("run", "odd", "-o", "json")).json()["id"]
    ok(cli("dispatch"))
    ok(cli("runs", "logs", run_id, "--follow", "--interval", "0.01"))
    assert "[/x]" in ok(cli("dispatch")).out + ok(cli("runs", "ls")).out
    later = ok(cli("run", "odd", "--in", "1h", "-o", "json")).json()["id"]
    store = LocalStore(Settings().store_path)
    assert store.set_state(store.get_run(later), StateType.SCHEDULED, MARKUP)
    assert MARKUP in ok(cli("runs", "ls")).out
    inspected = ok(cli("runs", "inspect", later)).out
    assert inspected.count(MARKUP) == 2, "in the state line and in the history"


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("laughs.yaml", BILLION_LAUGHS, "YAML aliases (*a) are not accepted"),
        ("recursive.yaml", "a: &a [*a]\n", "YAML aliases (*a) are not accepted"),
        ("deep.yaml", "[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
        ("deep.json", "[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
        ("deeper.json", "[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),
        ("latin1.yaml", b"description: caf\xe9\n", "is not UTF-8 text"),
        ("huge.json", b" " * (4 * 1024 * 1024 + 1), "is larger than 4 MiB"),
        ("long-number.json", '{"cpu": ' + "1" * 5000 + "}", "is not valid JSON"),
        ("long-number.yaml", "cpu: " + "1" * 5000, "is not valid YAML"),
    ],
)
def test_every_file_the_cli_reads_is_read_within_limits(
    cli: Cli, deployment: str, tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    file = tmp_path / name
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content)
    for args in (
        ("create", "other", "--type", "process", "--base-job-template", str(file)),
        ("update", "local", "--base-job-template", str(file)),
        ("deployment", "create", "other", "--pool", "local", "-v", f"@{file}"),
        ("run", deployment, "-v", f"@{file}"),
        ("preview", "local", "-v", f"@{file}"),
        ("apply", str(file)),
    ):
        result = cli(*args)
        fails(result, message)
        assert len(result.err.strip().splitlines()) == 1, result.err
    assert [p["name"] for p in ok(cli("ls", "-o", "json")).json()] == ["local"]
    assert ok(cli("runs", "ls", "-o", "json")).json() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-v", "[" * 5000 + "]" * 5000), "--job-variables: nested deeper than 64 levels"),
        (("-v", '{"cpu": ' + "1" * 5000 + "}"), "--job-variables is not valid JSON"),
        (("--param", "n=" + "1" * 5000), "is not valid JSON"),
    ],
)
def test_inline_json_is_read_within_limits(cli: Cli, deployment: str, args: tuple[str, ...], message: str) -> None:
    fails(cli("run", deployment, *args), message)


@pytest.mark.parametrize(
    "variables",
    [
        '{"env": {"DB_PASSWORD": ["hunter2"]}}',
        '{"env": {"API_TOKEN": 12345678}}',
        '{"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}',
        '{"env": {"SERVICE_CREDENTIALS": {"user": "bob", "password": "hunter2"}}}',
    ],
)
def test_validation_messages_mask_the_values_of_secret_named_variables(
    cli: Cli, deployment: str, variables: str
) -> None:
    for args in (
        ("deployment", "create", "other", "--pool", "local", "-v", variables),
        ("run", deployment, "-v", variables),
    ):
        result = cli(*args)
        fails(result, "invalid job variables: job variable 'env")
        assert "********" in result.err
        assert "hunter2" not in result.err
        assert "12345678" not in result.err


def test_validation_messages_keep_other_values(cli: Cli, deployment: str) -> None:
    fails(cli("run", deployment, "-v", '{"env": {"GREETING": ["hello"]}}'), "['hello'] is not of type")


@pytest.mark.parametrize(
    ("later", "message"),
    [
        ("deployments: [{name: d, pool: nowhere}]", "no work pool named 'nowhere'"),
        ("deployments: [{name: d, pool: a, job_variables: {stream_output: 1}}]", "1 is not of type 'boolean'"),
        ("deployments: [{name: d, pool: a}, {name: d, pool: b}]", "deployment 'd' is declared more than once"),
        ("  - {name: c, type: process, base_job_template: missing.json}", "cannot read"),
    ],
)
def test_a_failed_apply_changes_nothing(cli: Cli, pool: str, tmp_path: Path, later: str, message: str) -> None:
    spec = tmp_path / "push-pools.yaml"
    spec.write_text(
        "pools:\n"
        "  - {name: a, type: process}\n"
        f"  - {{name: {pool}, type: process, concurrency_limit: 9, description: changed}}\n"
        "  - {name: b, type: process}\n" + later + "\n"
    )
    fails(cli("apply", str(spec)), message)
    (only,) = ok(cli("ls", "-o", "json")).json()
    assert (only["name"], only["concurrency_limit"], only["description"]) == (pool, 3, None)
    assert ok(cli("deployment", "ls", "-o", "json")).json() == []


def test_an_apply_the_store_fails_halfway_changes_nothing(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "push-pools.yaml"
    big = "x" * 60_000  # the second pool's row needs more pages than the store may grow by
    spec.write_text(f"pools:\n  - {{name: a, type: process}}\n  - {{name: b, type: process, description: {big}}}\n")
    ok(cli("ls"))
    _fill_the_disk()
    capsys.readouterr()
    assert main(["apply", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "database or disk is full" in err
    assert "Unexpected error" not in err
    assert ok(cli("ls", "-o", "json")).json() == []


def _fill_the_disk() -> None:
    """The store may grow by a few pages only: a write needing more fails as on a full disk, in SQLite's words."""
    context.reset()
    store = context.catalog()
    assert isinstance(store, LocalStore)
    with store.atomic():
        pass
    pages = store._db().execute("PRAGMA page_count").fetchone()[0]
    store._db().execute(f"PRAGMA max_page_count = {pages + 4}")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("full", "database or disk is full"),
        ("read-only", "attempt to write a readonly database"),
    ],
)
def test_a_store_fault_is_one_line(
    cli: Cli, pool: str, capsys: pytest.CaptureFixture[str], fault: str, message: str
) -> None:
    if fault == "full":
        _fill_the_disk()
    else:
        context.reset()
        context.catalog()._db().execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
    capsys.readouterr()
    assert main(["update", pool, "--description", "x" * 60_000]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Unexpected error" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_an_unusable_store_file_or_home_is_one_line(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "store.db").write_bytes(b"not a database " * 100)
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path / "garbage"))
    fails(cli("ls"), "file is not a database")
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path / "a-file" / "home"))
    fails(cli("ls"), "cannot make the store's directory")


TOO_MANY = str(2**63)


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (("create", "q", "--type", "process", "--concurrency-limit", TOO_MANY), "less than or equal to 2147483647", 2),
        (("update", "local", "--concurrency-limit", TOO_MANY), "(0 to 2147483647)", 1),
        (("set-concurrency-limit", "local", TOO_MANY), "less than or equal to 2147483647", 2),
        (("runs", "ls", "--limit", TOO_MANY), "less than or equal to 2147483647", 2),
        (("create", "q", "--type", "process", "--description", "caf\udce9"), "an argument is not UTF-8 text", 2),
        (("get-default-base-job-template", "--type", "process", "-f", "/no/such/dir/t.json"), "cannot write", 1),
    ],
)
def test_bad_arguments_are_one_line(cli: Cli, pool: str, args: tuple[str, ...], message: str, code: int) -> None:
    result = cli(*args)
    fails(result, message, code)
    assert "Unexpected error" not in result.err
    (only,) = ok(cli("ls", "-o", "json")).json()
    assert only["concurrency_limit"] == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f"pools: [{{name: big, type: process, concurrency_limit: {TOO_MANY}}}]", "less than or equal to 2147483647"),
        ("pools: [{name: odd, type: process, description: !!binary aGVsbG8=}]", "holds a bytes value"),
        ("pools: [{name: odd, type: process, set: !!set {a, b}}]", "holds a set value"),
    ],
)
def test_apply_files_with_what_the_store_cannot_hold_are_refused(
    cli: Cli, tmp_path: Path, content: str, message: str
) -> None:
    spec = tmp_path / "push-pools.yaml"
    spec.write_text(content)
    result = cli("apply", str(spec))
    fails(result, message)
    assert "Unexpected error" not in result.err


def test_yaml_dates_stay_text(cli: Cli, deployment: str, tmp_path: Path) -> None:
    variables = tmp_path / "v.yaml"
    variables.write_text("env: {RELEASED: 2026-01-31}\n")
    ok(cli("deployment", "create", "dated", "--pool", "local", "--command", "x", "-v", f"@{variables}"))
    assert ok(cli("deployment", "inspect", "dated", "-o", "json")).json()["job_variables"] == {
        "env": {"RELEASED": "2026-01-31"}
    }


def test_read_only_commands_do_not_wait_behind_a_writer(cli: Cli, deployment: str) -> None:
    run_id = ok(cli("run", deployment, "-o", "json")).json()["id"]
    command = [sys.executable, "-c", "from push_pools.cli import entry_point; entry_point()"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    writer = sqlite3.connect(Settings().store_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock throughout, as a long tick would (a write waits 60 s)
    try:
        for args in (
            ["ls"],
            ["inspect", "local"],
            ["deployment", "ls"],
            ["deployment", "inspect", deployment],
            ["runs", "ls"],
            ["runs", "inspect", run_id],
        ):
            done = subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=30, check=False)
            assert done.returncode == 0, (args, done.stderr)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"properties": {"command": {"$ref": "#/definitions/Missing"}}}, "that points to nothing"),
        ({"properties": {"command": {"$ref": "#/properties/command"}}}, "cycle of $refs"),
        ({"properties": {"command": True}}, "variable 'command' is described by true"),
        ({"properties": {"command": {"$ref": "http://169.254.169.254/latest/meta-data"}}}, "never fetched"),
    ],
)
def test_a_template_whose_schema_would_fail_at_run_time_is_refused_everywhere(
    cli: Cli, pool: str, tmp_path: Path, variables: dict[str, object], message: str
) -> None:
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"job_configuration": {"command": "{{ command }}"}, "variables": variables}))
    spec = tmp_path / "push-pools.yaml"
    spec.write_text(f"pools:\n  - {{name: other, type: process, base_job_template: {template.name}}}\n")
    for args in (
        ("create", "other", "--type", "process", "--base-job-template", str(template)),
        ("update", pool, "--base-job-template", str(template)),
        ("apply", str(spec)),
    ):
        result = cli(*args)
        fails(result, message)
        assert "Unexpected error" not in result.err
        assert len(result.err.strip().splitlines()) == 1, result.err
    (only,) = ok(cli("ls", "-o", "json")).json()
    assert only["name"] == pool
    ok(cli("deployment", "create", "d", "--pool", pool, "--command", "echo hi"))
