"""`push-pool preview` of a Cloud Run run is what Cloud Run (the fake, through the real `run_v2` clients) receives,
field by field: the same builder, from the same settings, and secret values revealed only when sent."""

from __future__ import annotations

from typing import Any

from push_pools.backends.kit import secrets
from push_pools.platforms.gcp import backend as cloud_run_module
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.settings import Settings
from tests.fakes.cloud_run import FakeCloudRun, clients
from tests.integration.gcp.test_cloud_run_backend import configuration, run


def test_the_preview_is_what_cloud_run_received(fake: FakeCloudRun, cloud_run_template: dict[str, Any]) -> None:
    template = cloud_run_template
    template["job_configuration"]["project"] = None  # from PUSH_POOL_GCP_PROJECT, as the function would
    rendered = configuration(template, env={"GREETING": "hello"}, command="python -m flows 'a b'")
    settings = Settings(gcp_project="proj-1")
    preview = cloud_run_module.build_request(rendered, run(1), settings)
    jobs, executions = clients(fake)
    backend = CloudRunBackend(jobs, executions, default_project=settings.gcp_project, call_timeout=5.0)
    pid = backend.submit(rendered, run(1)).infrastructure_pid
    sent = secrets.reveal(preview)

    create = sent["create_job"]
    job = fake.jobs[f"{create['parent']}/jobs/{create['jobId']}"]
    assert job["labels"] == create["job"]["labels"]
    (container,) = job["template"]["template"]["containers"]
    (wanted,) = create["job"]["template"]["template"]["containers"]
    for field, value in wanted.items():
        assert container.get(field, []) == value, field  # an empty list is absent from what the API keeps

    execution = fake.executions[pid]
    assert pid.startswith(sent["run_job"]["name"] + "/executions/")
    (override,) = sent["run_job"]["overrides"]["containerOverrides"]
    (ran,) = execution["template"]["containers"]
    env = {entry["name"]: entry.get("value") for entry in ran["env"]}
    for entry in override["env"]:
        assert env[entry["name"]] == entry["value"], entry["name"]
    assert secrets.preview(preview)["run_job"]["overrides"]["containerOverrides"][0]["env"][0]["value"] == "********"
