"""Where a Cloud Run execution's output is: Cloud Logging, under the `cloud_run_job` resource. Pure.

Cloud Run sends each task's stdout and stderr to Cloud Logging, labelled with the job, the location and
`run.googleapis.com/execution_name`; push-pools does not read Cloud Logging itself (that would take another
client and the `logging.logEntries.list` permission), it names the query that does.
"""

from __future__ import annotations

import shlex

FRESHNESS = "30d"
"""How far back the printed command looks: the retention of Cloud Logging's _Default bucket (gcloud's own
default, 1d, would show nothing for yesterday's run)."""


def logging_filter(execution_name: str) -> str:
    """The Cloud Logging query for the output of `projects/P/locations/R/jobs/J/executions/E`."""
    _, _, _, location, _, job, _, execution = execution_name.split("/")
    return (
        f'resource.type="cloud_run_job" AND resource.labels.job_name="{job}" AND '
        f'resource.labels.location="{location}" AND labels."run.googleapis.com/execution_name"="{execution}"'
    )


def read_command(execution_name: str) -> str:
    """The `gcloud logging read` command that prints the execution's output, oldest line first."""
    project = execution_name.split("/")[1]
    return (
        f"gcloud logging read {shlex.quote(logging_filter(execution_name))} --project={shlex.quote(project)} "
        f"--freshness={FRESHNESS} --order=asc --format='value(textPayload)'"
    )
