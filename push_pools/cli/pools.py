"""Work pool commands, modelled on `prefect work-pool`: create, ls, inspect, update, delete, pause, resume,
get-default-base-job-template and preview."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from push_pools.backends import default_base_job_template, pool_type, pool_type_names, unavailable_reason
from push_pools.backends.kit import secrets
from push_pools.cli import context
from push_pools.cli.documents import load_document
from push_pools.cli.output import (
    OutputFormat,
    OutputOption,
    ago,
    console,
    print_document,
    print_json,
    print_table,
    redact,
    warn,
)
from push_pools.cli.parsing import MAX_COUNT, parse_assignments, parse_json_object, parse_limit
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.errors import ConfigurationError
from push_pools.models import FlowRun, State, StateType, WorkPool
from push_pools.templating import check_base_job_template, set_variable_defaults

TemplateOption = Annotated[
    Path | None,
    typer.Option("--base-job-template", help="A JSON or YAML base job template; default: the type's own."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="VAR=VALUE: change a variable's default (VALUE is JSON if it parses, else text)."),
]
LimitOption = Annotated[
    int | None, typer.Option("--concurrency-limit", min=0, max=MAX_COUNT, help="Most runs active at once.")
]
TypeOption = Annotated[
    str,
    typer.Option(
        "--type",
        "-t",
        metavar="[" + "|".join(pool_type_names()) + "]",
        autocompletion=lambda: pool_type_names(),
        help="The pool type: ours, or Prefect's name for it.",
    ),
]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="What the pool is for.")]


def build_template(type_name: str, template_file: Path | None, assignments: dict[str, Any]) -> dict[str, Any]:
    """The pool's base job template: from a file or the type's default, with `--set` defaults applied, checked."""
    template = load_document(template_file) if template_file else default_base_job_template(type_name)
    check_base_job_template(template)
    return set_variable_defaults(template, assignments) if assignments else template


def create(
    name: Annotated[str, typer.Argument(help="The pool's name.")],
    type_: TypeOption,
    base_job_template: TemplateOption = None,
    set_: SetOption = None,
    concurrency_limit: LimitOption = None,
    description: DescriptionOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused: no run is submitted.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a pool of the same name.")] = False,
) -> None:
    """Create a work pool."""
    canonical = pool_type(type_).name
    template = build_template(canonical, base_job_template, parse_assignments(set_ or []))
    pool = WorkPool(
        name=name,
        type=canonical,
        base_job_template=template,
        description=description,
        is_paused=paused,
        concurrency_limit=concurrency_limit,
    )
    context.catalog().save_pool(pool, overwrite=overwrite)
    console.print(
        f"Created work pool [bold]{name}[/bold] of type {canonical} (Prefect type {pool_type(canonical).prefect_type})."
    )
    _warn_if_unservable(canonical)


def _warn_if_unservable(type_: str) -> None:
    """The pool is saved either way (another installation may serve it); say when this one cannot."""
    reason = unavailable_reason(type_)
    if reason is not None:
        warn(f"this installation cannot serve {type_} pools: {reason}")


def ls(output: OutputOption = OutputFormat.TABLE) -> None:
    """List work pools."""
    pools = context.reader().list_pools()
    interval = context.settings().tick_interval
    now = datetime.now(UTC)
    if output is not OutputFormat.TABLE:
        print_document([_pool_document(pool, now) for pool in pools], output)
        return
    rows = [
        (p.name, p.type, p.status(now, interval), _limit(p.concurrency_limit), ago(p.last_tick_at, now)) for p in pools
    ]
    print_table("Work pools", ["Name", "Type", "Status", "Concurrency limit", "Last tick"], rows)


def inspect(name: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """Show a work pool: its status, when the executor last ran, and its variables."""
    pool = context.reader().inspect_pool(name)
    now = datetime.now(UTC)
    if output is not OutputFormat.TABLE:
        print_document(_pool_document(pool, now), output)
        return
    console.print(f"[bold]Work pool {escape(pool.name)}[/bold] ({escape(pool.type)})")
    console.print(f"  status:            {pool.status(now, context.settings().tick_interval)}")
    if pool.not_ready_reason:
        console.print(f"  not ready because: {escape(pool.not_ready_reason)}")
    console.print(f"  last tick:         {ago(pool.last_tick_at, now)}")
    console.print(f"  paused:            {'yes' if pool.is_paused else 'no'}")
    console.print(f"  concurrency limit: {_limit(pool.concurrency_limit)}")
    if pool.description:
        console.print(f"  description:       {escape(pool.description)}")
    properties = pool.base_job_template.get("variables", {}).get("properties", {})
    rows = [(var, spec.get("type", ""), redact({var: spec.get("default")})[var]) for var, spec in properties.items()]
    print_table("Variables", ["Name", "Type", "Default"], rows)


def update(
    name: str,
    base_job_template: TemplateOption = None,
    set_: SetOption = None,
    concurrency_limit: Annotated[
        str | None,
        typer.Option("--concurrency-limit", metavar="[N|none]", help="Most runs active at once; none: no limit."),
    ] = None,
    description: DescriptionOption = None,
) -> None:
    """Change a work pool's template, variable defaults, concurrency limit or description."""
    catalog = context.catalog()
    pool = catalog.get_pool(name)
    assignments = parse_assignments(set_ or [])
    template = pool.base_job_template
    if base_job_template is not None:
        template = build_template(pool.type, base_job_template, assignments)
    elif assignments:
        template = set_variable_defaults(template, assignments)
    changes: dict[str, Any] = {"base_job_template": template}
    if concurrency_limit is not None:
        changes["concurrency_limit"] = parse_limit(concurrency_limit)
    if description is not None:
        changes["description"] = description
    catalog.save_pool(pool.model_copy(update=changes), overwrite=True)
    console.print(f"Updated work pool [bold]{name}[/bold].")
    _warn_if_unservable(pool.type)


def delete(name: str) -> None:
    """Delete a work pool (it must have no deployments)."""
    context.catalog().delete_pool(name)
    console.print(f"Deleted work pool [bold]{name}[/bold].")


def set_concurrency_limit(
    name: str, limit: Annotated[int, typer.Argument(min=0, max=MAX_COUNT, help="Most runs active at once.")]
) -> None:
    """Set a work pool's concurrency limit (as `prefect work-pool set-concurrency-limit`)."""
    _set_limit(name, limit)


def clear_concurrency_limit(name: str) -> None:
    """Remove a work pool's concurrency limit (as `prefect work-pool clear-concurrency-limit`)."""
    _set_limit(name, None)


def pause(name: str) -> None:
    """Stop submitting runs from a pool; cancellations and status updates go on."""
    _set_paused(name, True)


def resume(name: str) -> None:
    """Submit a paused pool's runs again."""
    _set_paused(name, False)


def get_default_base_job_template(
    type_: TypeOption,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Write it to this file instead of printing.")
    ] = None,
) -> None:
    """Print a pool type's default base job template, to start a custom one from."""
    template = default_base_job_template(type_)
    if file is None:
        print_json(template)
        return
    try:
        file.write_text(json.dumps(template, indent=2) + "\n")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {file}: {exc.strerror}") from None
    console.print(f"Wrote the {pool_type(type_).name} template to {file}.")


def preview(
    name: str,
    deployment: Annotated[str | None, typer.Option("--deployment", "-d", help="Render with this deployment.")] = None,
    job_variables: Annotated[
        str | None, typer.Option("--job-variables", "-v", help="Run job variables: JSON or @FILE.")
    ] = None,
) -> None:
    """Print the exact request the backend would send for a run of this pool. Touches nothing."""
    catalog = context.catalog()
    pool = catalog.get_pool(name)
    found = catalog.get_deployment_by_name(deployment) if deployment else None
    if found is not None and found.pool_name != pool.name:
        raise ConfigurationError(f"deployment {found.name!r} belongs to pool {found.pool_name!r}, not {pool.name!r}")
    now = datetime.now(UTC)
    run = FlowRun(
        id=str(uuid.UUID(int=0)),
        name="preview",
        pool_name=pool.name,
        deployment_id=found.id if found else None,
        deployment_name=found.name if found else None,
        state=State(type=StateType.PENDING, name="Pending", timestamp=now),
        expected_start_time=now,
        job_variables=parse_json_object(job_variables, "--job-variables"),
    )
    settings = context.settings()
    dispatcher = Dispatcher(catalog, Backends(settings), settings)
    for warning in dispatcher.prepare(run, pool).warnings:
        warn(warning)
    print_json(secrets.preview(dispatcher.preview(run, pool)))


def _set_limit(name: str, limit: int | None) -> None:
    catalog = context.catalog()
    pool = catalog.get_pool(name)
    catalog.save_pool(pool.model_copy(update={"concurrency_limit": limit}), overwrite=True)
    console.print(f"Work pool [bold]{name}[/bold]: concurrency limit {_limit(limit)}.")


def _set_paused(name: str, paused: bool) -> None:
    catalog = context.catalog()
    pool = catalog.get_pool(name)
    catalog.save_pool(pool.model_copy(update={"is_paused": paused}), overwrite=True)
    console.print(f"Work pool [bold]{name}[/bold] {'paused' if paused else 'resumed'}.")


def _pool_document(pool: WorkPool, now: datetime) -> dict[str, Any]:
    document: dict[str, Any] = redact(pool.model_dump(mode="json"))
    return document | {"status": pool.status(now, context.settings().tick_interval)}


def _limit(limit: int | None) -> str:
    return "none" if limit is None else str(limit)
