"""The function, locally: `dispatch` does what the timer trigger does once; `serve` is the webhook plus a
periodic tick, on the same code paths the cloud entry points call."""

from __future__ import annotations

import enum
import signal
import sys
import threading
from typing import Annotated

import typer
from rich.markup import escape

from push_pools import logs
from push_pools.cli import context
from push_pools.cli.output import OutputFormat, OutputOption, console, print_document, print_table
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.errors import ConfigurationError
from push_pools.tick import TickReport, tick


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option("--log-format", help="Log lines on stderr: text or JSON; default: text on a terminal, else JSON."),
]


def _configure_logs(log_format: LogFormat | None) -> None:
    if log_format is None:
        log_format = LogFormat.TEXT if sys.stderr.isatty() else LogFormat.JSON
    logs.configure(logs.TextFormatter() if log_format is LogFormat.TEXT else logs.JsonFormatter())


def _dispatcher() -> Dispatcher:
    settings = context.settings()
    return Dispatcher(context.catalog(), Backends(settings), settings)


def dispatch(
    pool: Annotated[str | None, typer.Option("--pool", "-p", help="Only this pool; default: every pool.")] = None,
    output: OutputOption = OutputFormat.TABLE,
    log_format: LogFormatOption = None,
) -> None:
    """Run one tick: submit due runs, follow up running ones, stop cancelled ones. Exits 1 if the tick had errors."""
    _configure_logs(log_format)
    with console.status("Dispatching…"):
        report = tick(_dispatcher(), pool)
    if output is not OutputFormat.TABLE:
        print_document(
            {
                "pools": report.pools,
                "outcomes": [o.model_dump(mode="json", exclude_none=True) for o in report.outcomes],
                "counts": report.counts(),
                "state_changes": report.state_changes,
                "cancelled": report.cancelled,
                "swept": report.swept,
                "pruned": report.pruned,
                "errors": report.errors,
            },
            output,
        )
    else:
        _print_report(report)
    if report.errors:
        raise typer.Exit(1)


def _print_report(report: TickReport) -> None:
    if report.outcomes:
        rows = [(o.flow_run_id, o.status, o.infrastructure_pid or "", o.message or "") for o in report.outcomes]
        print_table("Submissions", ["Run", "Outcome", "Infrastructure", "Message"], rows)
    console.print(report.summary(), markup=False)
    for error in report.errors:
        console.print(f"[red]error:[/red] {escape(error)}")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8787,
    log_format: LogFormatOption = None,
) -> None:
    """Run the function locally: the webhook on HOST:PORT and a tick every PUSH_POOL_TICK_INTERVAL_SECONDS."""
    from push_pools.triggers.http_server import LocalFunction

    if context.settings().webhook_secret is None:
        raise ConfigurationError("set PUSH_POOL_WEBHOOK_SECRET: the webhook only accepts authenticated requests")
    _configure_logs(log_format)
    function = LocalFunction(_dispatcher(), host=host, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    function.start()
    bound_host, bound_port = function.address
    console.print(f"push-pools listening on http://{bound_host}:{bound_port} (Ctrl+C to stop)")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        function.stop()
