"""Prefect commands: `push-pool import NAME` adopts an existing Prefect pool; `push-pool prefect
install-automation` makes Prefect call the webhook as soon as a run is scheduled, late or cancelled.

Both need the prefect orchestrator: `PUSH_POOL_ORCHESTRATOR=prefect` and `PREFECT_API_URL` (with
`PREFECT_API_KEY` or `PREFECT_API_AUTH_STRING` when the server wants them).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from push_pools.cli import context
from push_pools.cli.output import OutputFormat, OutputOption, console, print_document
from push_pools.errors import ConfigurationError
from push_pools.orchestrators.prefect import PrefectOrchestrator
from push_pools.orchestrators.prefect.automation import EVENTS, install_automation, uninstall_automation
from push_pools.orchestrators.prefect.catalog import no_pool, pool_path
from push_pools.orchestrators.prefect.pool_import import PoolReview, review_pool
from push_pools.orchestrators.prefect.schema import PUSH_TYPES

app = typer.Typer(
    help="Prefect: the automation that calls push-pools' webhook.", no_args_is_help=True, rich_markup_mode=None
)

PoolOption = Annotated[str, typer.Option("--pool", "-p", help="The Prefect work pool.")]


def _prefect() -> PrefectOrchestrator:
    catalog = context.catalog()
    if not isinstance(catalog, PrefectOrchestrator):
        raise ConfigurationError("this command works on Prefect's pools: set PUSH_POOL_ORCHESTRATOR=prefect")
    return catalog


@app.command("install-automation")
def install(
    pool: PoolOption,
    url: Annotated[str, typer.Option("--url", help="The function's webhook URL, as Prefect's server can reach it.")],
) -> None:
    """Create or update the automation that calls the webhook for the pool's Scheduled, Late and Cancelling runs.

    The call carries PUSH_POOL_WEBHOOK_SECRET as a bearer token, kept in a Prefect Webhook block (never printed).
    """
    settings = context.settings()
    if settings.webhook_secret is None:
        raise ConfigurationError("set PUSH_POOL_WEBHOOK_SECRET to the webhook secret the function was deployed with")
    installed = install_automation(_prefect().api, pool, url, settings.webhook_secret.get_secret_value())
    verb = "Created" if installed.created else "Updated"
    console.print(f"{verb} automation [bold]{escape(installed.automation_name)}[/bold] ({installed.automation_id}).")
    console.print(f"  calls {escape(url)} on: {', '.join(EVENTS)}")
    console.print(f"  token: from PUSH_POOL_WEBHOOK_SECRET, kept in Webhook block {installed.block_name!r}")
    console.print("Prefect does not retry failed webhook calls: keep the function's timer tick running.")


@app.command("uninstall-automation")
def uninstall(pool: PoolOption) -> None:
    """Delete the pool's automation and its Webhook block."""
    if uninstall_automation(_prefect().api, pool):
        console.print(f"Removed push-pools' automation for work pool [bold]{escape(pool)}[/bold].")
    else:
        console.print(f"Work pool [bold]{escape(pool)}[/bold] has no push-pools automation.")


def import_pool(
    name: Annotated[str, typer.Argument(help="The Prefect work pool to adopt.")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Adopt an existing Prefect work pool (a hybrid worker's, or one made from an agent's infrastructure block):
    check what push-pools can honour in it, and say how to serve it."""
    orchestrator = _prefect()
    data = orchestrator.api.get(pool_path(name), missing=no_pool(name))
    review = review_pool(data["name"], data["type"], data.get("base_job_template") or {}, context.settings())
    served = _served(orchestrator, review)
    if output is not OutputFormat.TABLE:
        print_document(_review_document(review, served), output)
    else:
        _print_review(review, served)
    if not review.usable:
        raise ConfigurationError(f"work pool {name!r} cannot be served as it is: fix the problems above")


def _served(orchestrator: PrefectOrchestrator, review: PoolReview) -> bool:
    if orchestrator.served_pools:
        return review.pool_name in orchestrator.served_pools
    return review.prefect_type in PUSH_TYPES.values() and not orchestrator.api.connection.is_cloud


def _print_review(review: PoolReview, served: bool) -> None:
    kind = review.pool_type or "not servable"
    console.print(f"[bold]Work pool {escape(review.pool_name)}[/bold]: Prefect type {review.prefect_type} → {kind}")
    for problem in review.problems:
        console.print(f"  [red]problem:[/red] {escape(problem)}")
    for warning in review.warnings:
        console.print(f"  [yellow]ignored:[/yellow] {escape(warning)}")
    if not review.usable:
        console.print(
            "Fix the template (`push-pool update NAME --base-job-template FILE`; start from "
            f"`push-pool get-default-base-job-template --type {review.pool_type or 'TYPE'}`), or create a new pool."
        )
        return
    if served:
        console.print("push-pools serves this pool: runs go straight to the cloud, with no worker.")
    else:
        console.print(
            f"To serve it, add {review.pool_name!r} to PUSH_POOL_PREFECT_WORK_POOLS in the function's settings "
            "(the Terraform module's `prefect_work_pools`)."
        )
    console.print("Stop this pool's workers (`prefect worker start` / `prefect agent start`): they are not needed.")


def _review_document(review: PoolReview, served: bool) -> dict[str, object]:
    return {
        "pool": review.pool_name,
        "prefect_type": review.prefect_type,
        "pool_type": review.pool_type,
        "usable": review.usable,
        "served": served,
        "problems": review.problems,
        "warnings": review.warnings,
    }
