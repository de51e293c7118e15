"""push-pools side by side with Prefect's own workers, on the same fakes and the same runs (issue 7, part 2).

    .venv/bin/python -m bench.workers [--quick] [--repeats N] [--burst-runs N] [--file-database] [--ecs-burst-only]

One Prefect server provides the runs of both sides in every comparison (`world`): `ecs` (calls per run, task
definition registrations, time to submit 100 due runs, a 500-run burst against ECS's rate limits), `cloud_run` and
`aci` (write calls per run, `writes`). `ecs` explains the set-up and why it is fair. Needs `.venv-prefect` (the
server) and `.venv-prefect-workers` (Prefect's workers), which `make bench` builds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.figures import Figure


def measure(
    quick: bool = False,
    *,
    repeats: int = 1,
    burst_runs: int = 500,
    file_database: bool = False,
    ecs_burst_only: bool = False,
) -> list[Figure]:
    """Every comparison, or only the ECS burst; `quick` is a smoke test of the whole path (batches of 20, a 120-run
    burst), about three minutes here: a Prefect server and Prefect's worker processes take their time to start."""
    from bench.workers import aci, cloud_run, ecs
    from bench.workers.world import Runs, prefect_server
    from push_pools.orchestrators.prefect.api import PrefectApi

    with (
        tempfile.TemporaryDirectory(prefix="bench-workers-") as directory,
        prefect_server(Path(directory), file_database=file_database) as server,
    ):
        work = Path(directory)
        runs = Runs(PrefectApi(server.connection()))
        try:
            batch, burst = (20, 120) if quick else (100, burst_runs)
            figures = ecs.measure(
                server, runs, work, repeats=repeats, batch=batch, burst_runs=burst, burst_only=ecs_burst_only
            )
            if not ecs_burst_only:
                figures += cloud_run.measure(server, runs, work)
                figures += aci.measure(server, runs, work)
        finally:
            runs.api.close()
    return figures
