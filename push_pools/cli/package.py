"""`push-pool package`: the function archive a platform's Terraform module deploys, and what went into it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from push_pools.cli.output import console
from push_pools.packaging import Architecture, PlatformName, build_package


def package(
    platform: Annotated[PlatformName, typer.Argument(help="The function's cloud.")],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Where to write the archive; default: dist/push-pools-PLATFORM.zip."),
    ] = None,
    architecture: Annotated[Architecture, typer.Option(help="Lambda's architecture.")] = "x86_64",
) -> None:
    """Build the deployable function archive for a platform, for its Terraform module to deploy."""
    output = file or Path("dist") / f"push-pools-{platform}.zip"
    with console.status(f"Building the {platform} function package…"):
        report = build_package(platform, output, architecture=architecture)
    console.print(f"Wrote {report.path}: {report.size_bytes / 1_000_000:.1f} MB, {report.files} files.")
    how = "Vendored" if report.vendored else "Pinned in requirements.txt, installed at deploy time"
    console.print(f"{how} ({len(report.requirements)}): {', '.join(report.requirements)}", soft_wrap=True)
