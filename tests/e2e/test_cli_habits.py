"""The habits Prefect's CLI gives its users, on `push-pool`: `--version`, shell completion, flags that take no
value, choices for `--type`, several case-insensitive `--state`s, an idempotent cancel, a concurrency limit that
can be cleared, `-f` for files, JSON or YAML for every inspect, and ids printed whole."""

from __future__ import annotations

import re
import threading
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from push_pools.backends import pool_type
from push_pools.cli import output
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.tick import tick
from tests.e2e.test_cli import Cli, cli, fails, ok, pool

__all__ = ["cli", "pool"]  # fixtures


def test_version_and_completion(cli: Cli) -> None:
    assert ok(cli("--version")).out.strip() == f"push-pools {metadata.version('push-pools')}"
    root = ok(cli("--help")).out
    assert "--install-completion" in root
    assert "--show-completion" in root


def test_help_shows_flags_without_a_value_and_the_pool_types(cli: Cli) -> None:
    text = ok(cli("create", "--help")).out
    assert "<bool>" not in text
    assert "--paused " in text
    types = text.split("--type [", 1)[1].split("]", 1)[0].split("|")
    assert {"process", "ecs", "cloud-run", "aci", "ecs:push", "cloud-run-v2", "azure-container-instance"} <= set(types)
    assert all(pool_type(name) for name in types), "every choice is accepted"


def test_runs_ls_takes_several_states_in_any_case_a_pool_and_a_limit(cli: Cli, pool: str) -> None:
    ok(cli("create", "other", "--type", "process"))
    for name, pool_name in (("here", pool), ("there", "other")):
        ok(cli("deployment", "create", name, "--pool", pool_name, "--command", "true"))
    first = ok(cli("run", "here", "-o", "json")).json()
    second = ok(cli("run", "here", "--in", "1h", "-o", "json")).json()
    ok(cli("run", "there", "-o", "json"))
    ok(cli("runs", "cancel", second["id"]))

    def listed(*args: str) -> set[str]:
        return {run["id"] for run in ok(cli("runs", "ls", "-o", "json", *args)).json()}

    assert listed("--pool", pool, "--state", "scheduled") == {first["id"]}
    assert listed("--pool", pool, "-s", "Scheduled", "--state", "CANCELLED") == {first["id"], second["id"]}
    assert listed("--pool", pool, "--state", "running") == set()
    assert len(listed("--limit", "2")) == 2
    assert len(listed()) == 3


def test_cancelling_a_finished_run_succeeds_and_says_so(cli: Cli, pool: str) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "true"))
    run = ok(cli("run", "hello", "--in", "1h", "-o", "json")).json()
    assert "is CANCELLED" in ok(cli("runs", "cancel", run["id"])).out
    again = ok(cli("runs", "cancel", run["id"]))
    assert "had already finished (CANCELLED): nothing to cancel" in again.out
    fails(cli("runs", "cancel", "nope"), "no flow run with id 'nope'")


def test_a_concurrency_limit_can_be_set_and_cleared(cli: Cli, pool: str) -> None:
    def limit() -> int | None:
        value: int | None = ok(cli("inspect", pool, "-o", "json")).json()["concurrency_limit"]
        return value

    assert limit() == 3
    ok(cli("update", pool, "--concurrency-limit", "none"))
    assert limit() is None
    ok(cli("update", pool, "--concurrency-limit", "7"))
    assert limit() == 7
    ok(cli("clear-concurrency-limit", pool))
    assert limit() is None
    ok(cli("set-concurrency-limit", pool, "2"))
    assert limit() == 2
    fails(cli("update", pool, "--concurrency-limit", "-1"), "expects a number of runs (0 to 2147483647) or 'none'")
    fails(cli("update", pool, "--concurrency-limit", "many"), "got 'many'")
    fails(cli("set-concurrency-limit", pool, "--", "-1"), "Invalid value", code=2)
    fails(cli("clear-concurrency-limit", "nope"), "no work pool named 'nope'")


def test_the_default_template_goes_to_a_file_with_f(cli: Cli, tmp_path: Path) -> None:
    ok(cli("get-default-base-job-template", "--type", "ecs:push", "-f", str(tmp_path / "ecs.json")))
    assert "task_definition" in (tmp_path / "ecs.json").read_text()


@pytest.mark.parametrize(
    "command",
    [("inspect", "local"), ("ls",), ("deployment", "inspect", "hello"), ("deployment", "ls"), ("runs", "ls")],
)
def test_every_document_prints_as_json_or_yaml_never_python_reprs(cli: Cli, pool: str, command: tuple[str]) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "true", "-v", '{"env": {"A": "1"}}'))
    ok(cli("run", "hello"))
    as_json = ok(cli(*command, "-o", "json")).json()
    as_yaml = ok(cli(*command, "-o", "YAML")).out
    assert yaml.safe_load(as_yaml) == as_json
    assert "None" not in as_yaml
    assert "{'" not in as_yaml


def test_a_deployment_reads_as_yaml_by_default(cli: Cli, pool: str) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "true", "-v", '{"env": {"A": "1"}}'))
    shown = ok(cli("deployment", "inspect", "hello")).out
    assert yaml.safe_load(shown) == ok(cli("deployment", "inspect", "hello", "-o", "json")).json()
    assert "None" not in shown
    assert "{'" not in shown


def test_ids_are_printed_whole_on_one_line_at_80_columns(cli: Cli, pool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output.console, "width", 80)
    ok(cli("deployment", "create", "a-deployment-with-a-long-name", "--pool", pool, "--command", "true"))
    run = ok(cli("run", "a-deployment-with-a-long-name", "-o", "json")).json()
    assert run["id"] in ok(cli("runs", "ls")).out
    deployment = ok(cli("deployment", "inspect", "a-deployment-with-a-long-name", "-o", "json")).json()
    assert deployment["id"] in ok(cli("deployment", "ls")).out
    assert re.search(
        r"\([0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\)", ok(cli("run", "a-deployment-with-a-long-name")).out
    )


def test_run_takes_prefects_parameters_tags_and_start_options(cli: Cli, pool: str) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "true", "--parameters", '{"a": 1, "b": 2}'))
    run = ok(
        cli(
            "run",
            "hello",
            "--param",
            "b=3",
            "--param",
            "name=x",
            "--params",
            '{"c": [1]}',
            "--tag",
            "t1",
            "--tag",
            "t2",
            "--start-in",
            "1h",
            "-o",
            "json",
        )
    ).json()
    assert run["parameters"] == {"a": 1, "b": 3, "c": [1], "name": "x"}
    assert run["tags"] == ["t1", "t2"]
    assert ok(cli("runs", "inspect", run["id"], "-o", "json")).json()["tags"] == ["t1", "t2"]
    at = ok(cli("run", "hello", "--start-at", "2030-01-01T00:00:00+00:00", "-o", "json")).json()
    assert at["expected_start_time"].startswith("2030-01-01T00:00:00")
    fails(cli("run", "hello", "--param", "novalue"), "--param expects KEY=VALUE, got 'novalue'")


@pytest.mark.parametrize(("command", "code", "final"), [("true", 0, "COMPLETED"), ("false", 1, "CRASHED")])
def test_run_watch_follows_the_run_and_exits_with_its_outcome(
    cli: Cli, pool: str, tmp_path: Path, command: str, code: int, final: str
) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", command))
    stop = threading.Event()
    settings = Settings(home=tmp_path / "home")
    store = LocalStore(settings.store_path)

    def executor() -> None:  # the function, ticking beside the CLI
        dispatcher = Dispatcher(store, Backends(settings), settings)
        while not stop.wait(0.05):
            tick(dispatcher)

    thread = threading.Thread(target=executor)
    thread.start()
    try:
        watched = cli("run", "hello", "--watch", "--watch-interval", "0.05", "--watch-timeout", "60")
    finally:
        stop.set()
        thread.join()
        store.close()
    assert watched.code == code, watched.err
    assert f": {final}" in watched.err
    assert ": SCHEDULED" in watched.err


def test_run_watch_stops_at_its_timeout(cli: Cli, pool: str) -> None:
    ok(cli("deployment", "create", "hello", "--pool", pool, "--command", "true"))
    watched = cli("run", "hello", "--in", "1h", "--watch", "--watch-interval", "0.01", "--watch-timeout", "0")
    assert watched.code == 1
    assert "Stopped watching run hello-" in watched.err
