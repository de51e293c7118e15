"""Deployment commands: what to run, in which pool, with which job variables."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.markup import escape

from push_pools.cli import context
from push_pools.cli.output import (
    OutputFormat,
    OutputOption,
    console,
    print_document,
    print_table,
    redact,
    warn,
)
from push_pools.cli.parsing import parse_json_object
from push_pools.jobs import check_deployment
from push_pools.models import Deployment

app = typer.Typer(help="Create, list, inspect and delete deployments.", no_args_is_help=True, rich_markup_mode=None)


def save_deployment(deployment: Deployment) -> Deployment:
    """Check a deployment against its pool's template, warn about unused job variables, and save it."""
    catalog = context.catalog()
    for warning in check_deployment(catalog.get_pool(deployment.pool_name), deployment):
        warn(warning)
    return catalog.save_deployment(deployment)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    pool: Annotated[str, typer.Option("--pool", "-p", help="The work pool its runs go to.")],
    command: Annotated[str | None, typer.Option("--command", help="What the job runs.")] = None,
    image: Annotated[str | None, typer.Option("--image", help="The container image, for container pools.")] = None,
    job_variables: Annotated[
        str | None, typer.Option("--job-variables", "-v", help="Job variables: JSON or @FILE.")
    ] = None,
    parameters: Annotated[
        str | None, typer.Option("--parameters", help="Flow parameters: JSON or @FILE (given to the job as env).")
    ] = None,
    flow_name: Annotated[str | None, typer.Option("--flow-name", help="The flow this deploys.")] = None,
) -> None:
    """Create a deployment, or update the one with the same name."""
    deployment = Deployment(
        id=str(uuid.uuid4()),
        name=name,
        pool_name=pool,
        flow_name=flow_name,
        image=image,
        command=command,
        parameters=parse_json_object(parameters, "--parameters"),
        job_variables=parse_json_object(job_variables, "--job-variables"),
    )
    saved = save_deployment(deployment)
    console.print(
        f"Saved deployment [bold]{escape(saved.name)}[/bold] in pool {escape(saved.pool_name)} (id {saved.id})."
    )


@app.command("ls")
def list_deployments(
    pool: Annotated[str | None, typer.Option("--pool", "-p", help="Only this pool's.")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List deployments."""
    deployments = context.reader().list_deployments(pool)
    if output is not OutputFormat.TABLE:
        print_document([redact(d.model_dump(mode="json")) for d in deployments], output)
        return
    rows = [(d.name, d.pool_name, d.image or "", d.command or "", d.id) for d in deployments]
    print_table("Deployments", ["Name", "Pool", "Image", "Command", "Id"], rows)


@app.command()
def inspect(name: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """Show a deployment (as YAML unless asked for JSON)."""
    deployment = context.reader().get_deployment_by_name(name)
    document = redact(deployment.model_dump(mode="json"))
    print_document(document, OutputFormat.JSON if output is OutputFormat.JSON else OutputFormat.YAML)


@app.command()
def delete(name: str) -> None:
    """Delete a deployment (its runs stay, for their history)."""
    context.catalog().delete_deployment(name)
    console.print(f"Deleted deployment [bold]{name}[/bold].")
