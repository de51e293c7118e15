"""Flow run commands: schedule a run of a deployment, list, inspect, cancel runs and show their output."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape

from push_pools.backends import backend_module
from push_pools.backends.base import Backend, JobLogsReader, RenderedJob
from push_pools.cli import context
from push_pools.cli.output import (
    OutputFormat,
    OutputOption,
    ago,
    console,
    errors,
    print_document,
    print_table,
    redact,
)
from push_pools.cli.parsing import MAX_COUNT, parse_assignments, parse_json_object, start_time
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.errors import ConfigurationError, PushPoolError
from push_pools.jobs import run_context
from push_pools.models import FlowRun, StateType, WorkPool
from push_pools.templating import validate_job_variables

app = typer.Typer(
    help="List, inspect, cancel flow runs and show their output.", no_args_is_help=True, rich_markup_mode=None
)


def run(
    deployment: Annotated[str, typer.Argument(help="The deployment to run.")],
    at: Annotated[
        str | None, typer.Option("--at", "--start-at", help="When: an ISO 8601 time (local if no zone).")
    ] = None,
    in_: Annotated[
        str | None, typer.Option("--in", "--start-in", help="When: after a duration, e.g. 30s, 5m, 1h30m.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="KEY=VALUE: one flow parameter (VALUE is JSON if it parses, else text)."),
    ] = None,
    params: Annotated[
        str | None, typer.Option("--params", help="Flow parameters: a JSON object or @FILE; --param wins.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag for the run (repeat for several).")] = None,
    job_variables: Annotated[
        str | None, typer.Option("--job-variables", "-v", help="This run's job variables: JSON or @FILE.")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow the run to its end; exit 0 only if it COMPLETED.")
    ] = False,
    watch_interval: Annotated[
        float, typer.Option("--watch-interval", min=0.01, help="Seconds between looks at the run.")
    ] = 5.0,
    watch_timeout: Annotated[
        float | None, typer.Option("--watch-timeout", min=0, help="Stop watching after this many seconds.")
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Schedule a run of a deployment: now, at a time, or after a duration (as `prefect deployment run`)."""
    now = datetime.now(UTC)
    start = start_time(at, in_, now)
    catalog = context.catalog()
    found = catalog.get_deployment_by_name(deployment)
    variables = parse_json_object(job_variables, "--job-variables")
    parameters = parse_json_object(params, "--params") | parse_assignments(param or [], "--param")
    validate_job_variables(catalog.get_pool(found.pool_name).base_job_template, variables, partial=True)
    flow_run = catalog.create_run(found, start, parameters=parameters, tags=tag or (), job_variables=variables, now=now)
    if output is not OutputFormat.TABLE:
        print_document(redact(flow_run.model_dump(mode="json")), output)
    else:
        message = f"Scheduled run [bold]{escape(flow_run.name)}[/bold] ({flow_run.id}) for {_when(flow_run, now)}."
        console.print(message, soft_wrap=True)
    if watch:
        final = watch_run(flow_run, watch_interval, watch_timeout)
        if final.state.type is not StateType.COMPLETED:
            raise typer.Exit(1)


def watch_run(flow_run: FlowRun, interval: float, timeout: float | None) -> FlowRun:
    """Print the run's state each time it changes, until it is terminal (or `timeout` seconds have passed)."""
    catalog = context.catalog()
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = None
    while True:
        flow_run = catalog.get_run(flow_run.id)
        if flow_run.state.type is not seen:
            seen = flow_run.state.type
            message = f" ({flow_run.state.message})" if flow_run.state.message else ""
            errors.print(escape(f"Run {flow_run.name}: {seen}{message}"))
        if seen.is_terminal:
            return flow_run
        if deadline is not None and time.monotonic() >= deadline:
            errors.print(escape(f"Stopped watching run {flow_run.name} after {timeout:g} s: it is {seen}."))
            return flow_run
        time.sleep(interval)


@app.command("ls")
def list_runs(
    pool: Annotated[str | None, typer.Option("--pool", "-p", help="Only this pool's runs.")] = None,
    state: Annotated[
        list[StateType] | None,
        typer.Option("--state", "-s", case_sensitive=False, help="Only runs in this state (repeat for several)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_COUNT, help="At most this many, newest first.")] = 50,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List flow runs, newest expected start first."""
    runs = context.reader().list_runs(pool_name=pool, states=state or (), limit=limit)
    if output is not OutputFormat.TABLE:
        print_document([redact(r.model_dump(mode="json")) for r in runs], output)
        return
    now = datetime.now(UTC)
    rows = [
        (r.id, r.name, r.state.type, ago(r.expected_start_time, now), r.infrastructure_pid or "", r.state.message or "")
        for r in runs
    ]
    print_table("Flow runs", ["Id", "Name", "State", "Start", "Infrastructure", "Message"], rows)


@app.command()
def inspect(flow_run_id: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """Show a run: its state history, infrastructure id and messages."""
    flow_run = context.reader().get_run(flow_run_id)
    if output is not OutputFormat.TABLE:
        print_document(redact(flow_run.model_dump(mode="json")), output)
        return
    now = datetime.now(UTC)
    console.print(f"[bold]Flow run {escape(flow_run.name)}[/bold] ({escape(flow_run.id)})")
    console.print(f"  pool:           {flow_run.pool_name}", markup=False)
    console.print(f"  deployment:     {flow_run.deployment_name or ''}", markup=False)
    console.print(f"  state:          {flow_run.state.type} {flow_run.state.message or ''}", markup=False)
    console.print(f"  expected start: {_when(flow_run, now)}", markup=False)
    console.print(f"  infrastructure: {flow_run.infrastructure_pid or 'none'}", markup=False)
    console.print(f"  attempt:        {flow_run.attempt}", markup=False)
    if flow_run.job_variables:
        console.print(f"  job variables:  {json.dumps(redact(flow_run.job_variables))}", markup=False)
    rows = [(s.timestamp.isoformat(timespec="seconds"), s.type, s.message or "") for s in flow_run.state_history]
    print_table("State history", ["Time", "State", "Message"], rows)


@app.command()
def cancel(flow_run_id: str) -> None:
    """Cancel a run: a scheduled one at once; a submitted one is stopped by the next tick. A run that has already
    finished stays as it is (and the command still succeeds)."""
    catalog = context.catalog()
    flow_run = catalog.get_run(flow_run_id)
    if flow_run.state.type.is_terminal:
        console.print(
            f"Run {flow_run.name} had already finished ({flow_run.state.type}): nothing to cancel.", markup=False
        )
        return
    flow_run = catalog.request_cancellation(flow_run_id)
    console.print(f"Run {flow_run.name} is {flow_run.state.type}.", markup=False)


@app.command()
def logs(
    flow_run_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output until the run or its job has ended.")
    ] = False,
    tail: Annotated[int | None, typer.Option("--tail", "-n", min=0, help="Start with only the last N lines.")] = None,
    interval: Annotated[float, typer.Option("--interval", min=0.01, help="Seconds between reads with --follow.")] = 2.0,
) -> None:
    """Show a run's own output (its job's stdout and stderr, secrets masked), or the command or link that shows it
    where push-pools cannot read it."""
    catalog = context.catalog()
    flow_run = catalog.get_run(flow_run_id)
    pid = flow_run.infrastructure_pid
    if not pid:
        raise ConfigurationError(f"run {flow_run.name} has no infrastructure yet (it is {flow_run.state.type})")
    pool = catalog.get_pool(flow_run.pool_name)
    pool_type = pool.type
    backend = backend_module(pool_type).from_settings(context.settings())
    if not isinstance(backend, JobLogsReader):
        raise ConfigurationError(f"pool type {pool_type!r} cannot show a job's output")
    job = _rendered(flow_run, pool)
    first = backend.logs(pid, None if follow else tail, job)
    _echo(first.last(tail).lines)
    if first.elsewhere:
        typer.echo(first.elsewhere)
        return
    printed = len(first.lines)
    while follow and not _ended(flow_run.id, backend, pid):
        time.sleep(interval)
        printed += _echo(backend.logs(pid, None, job).lines[printed:])
    if follow:
        _echo(backend.logs(pid, None, job).lines[printed:])


def _rendered(flow_run: FlowRun, pool: WorkPool) -> RenderedJob | None:
    """The run's job as its pool renders it now (where its output went, once the cloud forgot the job); None when
    it no longer renders."""
    settings = context.settings()
    try:
        job = Dispatcher(context.catalog(), Backends(settings), settings).prepare(flow_run, pool)
    except PushPoolError:
        return None
    return RenderedJob(job.configuration, run_context(flow_run))


def _ended(flow_run_id: str, backend: Backend, pid: str) -> bool:
    """The run is finished, or its job is (an embedded store's run only moves on at the next tick)."""
    return context.catalog().get_run(flow_run_id).state.type.is_terminal or backend.status(pid).finished


def _echo(lines: tuple[str, ...]) -> int:
    for line in lines:
        typer.echo(line)
    return len(lines)


def _when(flow_run: FlowRun, now: datetime) -> str:
    return f"{flow_run.expected_start_time.isoformat(timespec='seconds')} ({ago(flow_run.expected_start_time, now)})"
