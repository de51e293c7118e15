"""`push-pool`: work pools, deployments and runs, and the function run locally. Modelled on `prefect work-pool`.

Exit codes: 0 success, 1 an error (one clear line on stderr, never a traceback), 2 a usage error.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from push_pools.cli import apply, deployments, function, package, pools, prefect, runs
from push_pools.cli.output import errors
from push_pools.errors import PushPoolError

app = typer.Typer(
    name="push-pool",
    help="Serverless push work pools: scheduled runs submitted straight to ECS, Cloud Run jobs or ACI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: rich's panels label every flag `<bool>` as if it took a value.
    rich_markup_mode=None,
)
app.command()(pools.create)
app.command("ls")(pools.ls)
app.command()(pools.inspect)
app.command()(pools.update)
app.command()(pools.delete)
app.command("set-concurrency-limit")(pools.set_concurrency_limit)
app.command("clear-concurrency-limit")(pools.clear_concurrency_limit)
app.command()(pools.pause)
app.command()(pools.resume)
app.command("get-default-base-job-template")(pools.get_default_base_job_template)
app.command()(pools.preview)
app.command("apply")(apply.apply)
app.add_typer(deployments.app, name="deployment")
app.command("run")(runs.run)
app.add_typer(runs.app, name="runs")
app.command()(function.dispatch)
app.command()(function.serve)
app.command("import")(prefect.import_pool)
app.add_typer(prefect.app, name="prefect")
app.command()(package.package)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"push-pools {metadata.version('push-pools')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")
    ] = False,
) -> None:
    """Serverless push work pools: scheduled runs submitted straight to ECS, Cloud Run jobs or ACI."""


def main(argv: list[str] | None = None) -> int:
    """The console script: run the CLI and turn errors into exit codes. Typer reports usage errors itself (2)."""
    args = sys.argv[1:] if argv is None else argv
    unreadable = next((arg for arg in args if not _is_utf8(arg)), None)
    if unreadable is not None:
        errors.print("[red]Error:[/red]", escape(f"an argument is not UTF-8 text: {unreadable!r}"), soft_wrap=True)
        return 2
    try:
        typer.main.get_command(app).main(args=args, prog_name="push-pool", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except PushPoolError as exc:
        errors.print("[red]Error:[/red]", escape(str(exc)), soft_wrap=True)
        return 1
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        errors.print("[red]Error:[/red]", escape(f"invalid {exc.title}: {problems}"), soft_wrap=True)
        return 1
    except Exception as exc:  # a bug: still one line, with the traceback on request
        if os.environ.get("PUSH_POOL_DEBUG"):
            raise
        errors.print("[red]Unexpected error:[/red]", escape(f"{type(exc).__name__}: {exc}"), soft_wrap=True)
        errors.print("Set PUSH_POOL_DEBUG=1 to see the traceback.")
        return 1
    return 0


def _is_utf8(arg: str) -> bool:
    """False for an argument the shell gave as bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        arg.encode()
    except UnicodeEncodeError:
        return False
    return True


def entry_point() -> None:
    sys.exit(main())
