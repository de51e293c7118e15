"""Cloud Run: push-pools beside Prefect's Cloud Run v2 worker (prefect-gcp 0.6.17), on the fake Cloud Run Admin API
(`tests.fakes.cloud_run`) and one Prefect server; write calls per run (see `writes` for the set-up).

Prefect's worker talks to the fake through its own client (googleapiclient, discovery document shipped with it); the
driver only points it at the fake's address with anonymous credentials and names the project (`BENCH_GCP_PROJECT`),
which its credentials block would otherwise ask Google for. push-pools uses `google-cloud-run`'s REST client.
Both use Prefect's default cloud-run-v2 template (region us-central1) with the same image and project.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.figures import Figure
from bench.workers.world import Runs, prefect_default_template
from bench.workers.writes import WORKER, Cloud, compare
from push_pools.backends.base import Backend
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.settings import Settings
from push_pools.templating import set_variable_defaults
from tests.e2e.prefect.server import PrefectServer
from tests.fakes.cloud_run import WRITE_METHODS, FakeCloudRun, clients

PROJECT = "bench-project"
IMAGE = "us-docker.pkg.dev/bench/flows/flows:1"
OUR_JOB_PREFIX = "pp-"


def measure(server: PrefectServer, runs: Runs, work: Path) -> list[Figure]:
    template = set_variable_defaults(prefect_default_template("cloud-run-v2"), {"image": IMAGE})
    with FakeCloudRun(seed=1) as fake:

        def backend(settings: Settings) -> Backend:
            jobs, executions = clients(fake)
            return CloudRunBackend(jobs, executions, default_project=PROJECT)

        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "PREFECT_", "PUSH_POOL_"))}
        cloud = Cloud(
            name="cloud-run",
            our_type="cloud-run",
            worker_type="cloud-run-v2",
            template=template,
            calls=fake.call_counts,
            write_methods=WRITE_METHODS,
            leftovers=lambda side: worker_jobs(fake) if side == WORKER else 0,
            finish_all=fake.finish_all,
            backend=backend,
            worker_env={
                **inherited,
                **server.client_env(),
                "BENCH_FAKE_ENDPOINT": fake.endpoint,
                "BENCH_GCP_PROJECT": PROJECT,
            },
        )
        return compare(server, runs, cloud, work)


def worker_jobs(fake: FakeCloudRun) -> int:
    """Jobs that are not push-pools' (which reuses its jobs: none of them is a per-run leftover)."""
    names = list(fake.jobs)  # one step under the GIL: safe while the fake serves requests
    return sum(1 for name in names if not name.rsplit("/", 1)[-1].startswith(OUR_JOB_PREFIX))
