"""Cloud Run jobs, the pure half: a rendered `cloud-run` job configuration → the Job to create and the RunJob
request that starts one run. No SDK and no I/O: this is what `push-pool preview` shows.

The configuration has the shape of Prefect's cloud-run-v2 work pools (`job_body` is a Cloud Run Admin API v2 Job,
camelCase, placeholders already rendered) plus `project`. It is split in two:

- **the job** (created once, reused): `job_body` with the container's command, secret references and labels;
  its id is `pp-<pool>-<hash>`, the hash being that of the job itself, so one pool with one template has one job;
- **the run** (one RunJob per flow run): env, args and timeout as per-execution overrides, and the run's
  idempotency key as the env variable `PUSH_POOL_IDEMPOTENCY_KEY`, by which a resubmission finds its execution.

Anything in `job_body` that changes with every run (say `{{ name }}` in a label) would make a job per run: keep
per-run values in `env`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from push_pools.backends.base import RunContext, parse_job_configuration
from push_pools.backends.kit import secrets as kit_secrets
from push_pools.backends.kit.shapes import env_pairs, split_argv
from push_pools.errors import TemplateError

IDEMPOTENCY_ENV: Final = "PUSH_POOL_IDEMPOTENCY_KEY"
MANAGED_LABEL: Final = "push-pools-managed"
POOL_LABEL: Final = "push-pools-pool"
TEMPLATE_LABEL: Final = "push-pools-template"
KEEP_LABEL: Final = "push-pools-keep"
DEFAULT_CONTAINER_NAME: Final = "flow-run"
MAX_TIMEOUT_SECONDS: Final = 7 * 24 * 3600
MAX_LABELS: Final = 64
_LABEL_LENGTH: Final = 63
_POOL_SLUG_LENGTH: Final = 30
_HASH_LENGTH: Final = 12
_PROJECT: Final = re.compile(r"^[a-z0-9][a-z0-9.:-]{1,62}$")
_REGION: Final = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_EXECUTION_NAME: Final = re.compile(r"^projects/[^/]+/locations/[^/]+/jobs/[^/]+/executions/[^/]+$")
_API_KEY_ENV: Final = "PREFECT_API_KEY"
_AUTH_STRING_ENV: Final = "PREFECT_API_AUTH_STRING"
SECRET_ENV_NAMES: Final = frozenset({_API_KEY_ENV, _AUTH_STRING_ENV})
"""Env names the orchestrator may fill with credentials; the template can deliver them by secret reference."""


class SecretKeySelector(BaseModel):
    """A Secret Manager secret and version, as Prefect's cloud-run-v2 templates give them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str = Field(min_length=1)
    version: str = Field(default="latest", min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"secret": value} if isinstance(value, str) else value

    def reference(self) -> dict[str, str]:
        return {"secret": self.secret, "version": self.version}


class CloudRunJobConfiguration(BaseModel):
    """The rendered job configuration of a `cloud-run` pool (Prefect's cloud-run-v2 shape, plus `project`)."""

    model_config = ConfigDict(extra="ignore")

    job_body: dict[str, Any]
    region: str = Field(min_length=1)
    project: str | None = None
    credentials: Any = None
    """Prefect's GcpCredentials: only its `project` is read; the function's own identity calls Cloud Run."""
    name: str | None = None
    command: str | list[str] | None = None
    env: dict[str, Any] = {}
    labels: dict[str, Any] = {}
    env_from_secrets: dict[str, SecretKeySelector] = {}
    prefect_api_key_secret: SecretKeySelector | None = None
    prefect_api_auth_string_secret: SecretKeySelector | None = None
    cloudsql_instances: list[str] = []
    keep_job: bool = False
    timeout: int | str | None = None
    default_image: str | None = None
    """The orchestrator's image (Prefect's, in Prefect mode) for a job naming none; pulled from docker.io, as
    prefect-gcp names it."""

    @field_validator("region")
    @classmethod
    def _region(cls, region: str) -> str:
        if not _REGION.match(region):
            raise ValueError(f"{region!r} is not a Cloud Run region (e.g. us-central1)")
        return region

    @field_validator("env_from_secrets", "labels", "env", mode="before")
    @classmethod
    def _no_mapping(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("cloudsql_instances", mode="before")
    @classmethod
    def _no_list(cls, value: Any) -> Any:
        return [] if value is None else value


def parse_configuration(configuration: Mapping[str, Any]) -> CloudRunJobConfiguration:
    return parse_job_configuration(CloudRunJobConfiguration, configuration, "cloud-run")


def build_request(
    configuration: Mapping[str, Any], run: RunContext, *, default_project: str | None = None
) -> dict[str, Any]:
    """The CreateJob request of the run's job (sent only when the job does not exist) and its RunJob request."""
    job = parse_configuration(configuration)
    parent = f"projects/{resolve_project(job, default_project)}/locations/{job.region}"
    spec, container_name, args = job_spec(job, run)
    template_hash = spec_hash(spec)
    spec["labels"][TEMPLATE_LABEL] = template_hash
    job_id = job_id_for(run.pool_name, template_hash)
    return {
        "create_job": {"parent": parent, "jobId": job_id, "job": spec},
        "run_job": {"name": f"{parent}/jobs/{job_id}", "overrides": run_overrides(job, run, container_name, args)},
    }


def resolve_project(job: CloudRunJobConfiguration, default_project: str | None) -> str:
    credentials_project = job.credentials.get("project") if isinstance(job.credentials, dict) else None
    project = job.project or credentials_project or default_project
    if not project:
        raise TemplateError(
            "cloud-run job configuration names no Google Cloud project: set the pool's 'project' variable "
            "(push-pool update POOL --set project=PROJECT) or PUSH_POOL_GCP_PROJECT"
        )
    if not isinstance(project, str) or not _PROJECT.match(project):
        raise TemplateError(f"cloud-run job configuration: {project!r} is not a Google Cloud project id")
    return project


def job_spec(job: CloudRunJobConfiguration, run: RunContext) -> tuple[dict[str, Any], str, list[str] | None]:
    """The Job to create (without its template-hash label), its first container's name, and the run's args."""
    body = copy.deepcopy(job.job_body)
    body.pop("name", None)
    task = _task_template(body)
    task.pop("timeout", None)
    if not task.get("vpcAccess") or task["vpcAccess"] == {"connector": None}:
        task.pop("vpcAccess", None)
    container = task["containers"][0]
    if not container.get("image") and job.default_image:
        container["image"] = f"docker.io/{job.default_image}"
    if not container.get("image"):
        raise TemplateError("cloud-run job configuration: no image; set the 'image' job variable")
    container.setdefault("name", DEFAULT_CONTAINER_NAME)
    args = split_argv(container.pop("args", None), "cloud-run job configuration: args")
    command = split_argv(container.get("command") or job.command, "cloud-run job configuration: command")
    if command:
        container["command"] = command
    else:
        container.pop("command", None)
    secrets = secret_env(job)
    for each in task["containers"]:
        each["env"] = [entry for entry in _env_list(each) if entry["name"] not in secrets] + (
            [secret_entry(name, ref) for name, ref in secrets.items()] if each is container else []
        )
    if job.cloudsql_instances:
        volume = {"name": "cloudsql", "cloudSqlInstance": {"instances": job.cloudsql_instances}}
        task.setdefault("volumes", []).append(volume)
        container.setdefault("volumeMounts", []).append({"name": "cloudsql", "mountPath": "/cloudsql"})
    body.setdefault("client", "push-pools")
    body["labels"] = job_labels(job, body.get("labels"), run)
    return body, str(container["name"]), args


def run_overrides(
    job: CloudRunJobConfiguration, run: RunContext, container_name: str, args: list[str] | None
) -> dict[str, Any]:
    """RunJob's overrides: everything that differs from one run to the next."""
    secrets = secret_env(job)
    ours = {IDEMPOTENCY_ENV: run.idempotency_key}
    plain = {k: v for k, v in plain_env(job.env).items() if k not in secrets and k not in ours}
    env = env_pairs(kit_secrets.secret_env(plain) | ours)
    container: dict[str, Any] = {"name": container_name, "env": env}
    if args:
        container["args"] = args
    overrides: dict[str, Any] = {"containerOverrides": [container]}
    timeout = timeout_seconds(job)
    if timeout is not None:
        overrides["timeout"] = f"{timeout}s"
    return overrides


def secret_env(job: CloudRunJobConfiguration) -> dict[str, SecretKeySelector]:
    """Env names delivered by Secret Manager reference; their plaintext values are never sent."""
    secrets = dict(job.env_from_secrets)
    if job.prefect_api_key_secret is not None:
        secrets[_API_KEY_ENV] = job.prefect_api_key_secret
    if job.prefect_api_auth_string_secret is not None:
        secrets[_AUTH_STRING_ENV] = job.prefect_api_auth_string_secret
    return secrets


def secret_entry(name: str, ref: SecretKeySelector) -> dict[str, Any]:
    return {"name": name, "valueSource": {"secretKeyRef": ref.reference()}}


def plain_env(env: Mapping[str, Any]) -> dict[str, str]:
    """Env values as Cloud Run takes them: strings; None unsets (leaves out) a name; JSON for lists and dicts."""
    values: dict[str, str] = {}
    for name, value in env.items():
        if value is None:
            continue
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, dict | list):
            values[name] = json.dumps(value)
        else:
            values[name] = str(value)
    return values


def timeout_seconds(job: CloudRunJobConfiguration) -> int | None:
    """The run's timeout: the `timeout` variable, else `job_body`'s task timeout ("600s" or 600)."""
    raw = job.timeout
    if raw is None:
        raw = _task_template(job.job_body).get("timeout")
    if raw is None:
        return None
    text = str(raw).strip().removesuffix("s")
    if not text.isdigit() or not 0 < int(text) <= MAX_TIMEOUT_SECONDS:
        raise TemplateError(f"cloud-run job configuration: timeout {raw!r} is not 1 to {MAX_TIMEOUT_SECONDS} seconds")
    return int(text)


def job_labels(job: CloudRunJobConfiguration, body_labels: Any, run: RunContext) -> dict[str, str]:
    """The job's labels: job_body's, the configuration's except those naming this run, then ours.

    A label whose value is this run's id, name or idempotency key would make every run's job different (one job
    per run, against the 1,000-jobs cap); RunJob cannot label an execution, so such labels are left out. The run
    is still identifiable: its id is in the execution's env.
    """
    per_run = {run.flow_run_id, run.flow_run_name, run.idempotency_key}
    stable = {key: value for key, value in job.labels.items() if str(value) not in per_run}
    merged = sanitize_labels({**(body_labels if isinstance(body_labels, dict) else {}), **stable})
    ours = {MANAGED_LABEL: "true", POOL_LABEL: slug(run.pool_name, _LABEL_LENGTH) or "pool"}
    if job.keep_job:
        ours[KEEP_LABEL] = "true"
    room = MAX_LABELS - len(ours) - 1  # one more for the template hash
    kept = dict(list((k, v) for k, v in merged.items() if k not in ours)[:room])
    return kept | ours


def sanitize_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    """Labels Google Cloud accepts: keys start with a letter; keys and values are [a-z0-9_-], 63 at most."""
    sanitized: dict[str, str] = {}
    for key, value in labels.items():
        clean_key = _label_text(str(key))
        if not clean_key or not clean_key[0].isalpha():
            clean_key = ("l-" + clean_key)[:_LABEL_LENGTH].rstrip("-_")
        sanitized[clean_key] = _label_text("" if value is None else str(value))
    return sanitized


def spec_hash(spec: Mapping[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_LENGTH]


def job_id_for(pool_name: str, template_hash: str) -> str:
    """`pp-<pool slug>-<hash>`: a valid Cloud Run job id (a letter first, [a-z0-9-], 49 characters at most)."""
    pool = slug(pool_name, _POOL_SLUG_LENGTH)
    return f"pp-{pool}-{template_hash}" if pool else f"pp-{template_hash}"


def slug(text: str, length: int) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower()))[:length].strip("-")


def is_execution_name(name: str) -> bool:
    return bool(_EXECUTION_NAME.match(name))


def location_of(resource_name: str) -> str:
    """`projects/P/locations/R/...` → `projects/P/locations/R`."""
    return "/".join(resource_name.split("/")[:4])


def carries_key(env: Iterable[Any], idempotency_key: str) -> bool:
    """True when an execution's container env (proto or dict entries) holds this idempotency key."""
    for entry in env:
        name = entry.get("name") if isinstance(entry, dict) else getattr(entry, "name", None)
        value = entry.get("value") if isinstance(entry, dict) else getattr(entry, "value", None)
        if name == IDEMPOTENCY_ENV and value == idempotency_key:
            return True
    return False


def _task_template(body: dict[str, Any]) -> dict[str, Any]:
    execution = body.get("template")
    task = execution.get("template") if isinstance(execution, dict) else None
    containers = task.get("containers") if isinstance(task, dict) else None
    if not isinstance(task, dict) or not isinstance(containers, list) or not containers:
        raise TemplateError("cloud-run job configuration: job_body.template.template.containers must list a container")
    if not all(isinstance(container, dict) for container in containers):
        raise TemplateError("cloud-run job configuration: each of job_body's containers must be a JSON object")
    return task


def _env_list(container: dict[str, Any]) -> list[dict[str, Any]]:
    env = container.get("env") or []
    if not isinstance(env, list) or not all(isinstance(entry, dict) and entry.get("name") for entry in env):
        raise TemplateError("cloud-run job configuration: a container's env must be a list of {name, value} objects")
    return env


def _label_text(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:_LABEL_LENGTH]
