"""Settings, read from `PUSH_POOL_*` environment variables: explicit argument > environment > default."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything push-pools reads from its environment, in one place."""

    model_config = SettingsConfigDict(env_prefix="PUSH_POOL_", extra="ignore")

    home: Path = Field(
        default=Path("~/.push-pools").expanduser(),
        description="Directory of the embedded store (store.db) and of local process runs' logs.",
    )
    store_journal_mode: Literal["wal", "delete"] = Field(
        default="wal",
        description="SQLite journal of the embedded store: `wal` (fast; one host) or `delete` (the rollback "
        "journal, for a store on a network filesystem such as EFS, where SQLite's write-ahead log cannot work).",
    )
    orchestrator: Literal["local", "prefect"] = Field(
        default="local",
        description="Where pools, deployments and runs live: the embedded SQLite store or a Prefect API.",
    )
    prefect_work_pools: list[str] = Field(
        default_factory=list,
        description="With the prefect orchestrator: the Prefect work pools this executor serves, as a JSON list of "
        'names (["etl", "reports"]). Empty: every ecs:push, cloud-run-v2:push and azure-container-instance:push '
        "pool of a self-hosted server. Required on Prefect Cloud, which serves :push pools itself.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret for webhook requests: sent as a bearer token or used for HMAC signatures.",
    )
    webhook_max_body_bytes: int = Field(
        default=64 * 1024, gt=0, description="Webhook request bodies larger than this are refused (HTTP 413)."
    )
    webhook_replay_window_seconds: int = Field(
        default=300, gt=0, description="Signed webhook requests older or newer than this are refused."
    )
    tick_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often the timer trigger ticks; a pool is READY within 3 of them."
    )
    orphan_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A run PENDING this long with no infrastructure id is resubmitted (same idempotency key). "
        "Keep it above the function's own timeout.",
    )
    event_silence_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        description="For backends whose cloud pushes state changes (ECS task events), the tick still reads a run "
        "whose state has not changed for this long, so a lost event cannot leave it PENDING or RUNNING forever.",
    )
    enqueue_horizon_seconds: float = Field(
        default=900.0,
        ge=0,
        description="A webhook for a run due within this horizon queues it with a delay (SQS allows 15 min).",
    )
    submit_attempts: int = Field(
        default=5, ge=1, description="Tries per submission before a transient failure gives the run back."
    )
    submit_backoff_max_seconds: float = Field(
        default=8.0, gt=0, description="Cap of one backoff wait between submission tries."
    )
    submit_deadline_seconds: float = Field(
        default=30.0,
        gt=0,
        description="No new try starts after this long; keep it inside the function timeout.",
    )
    max_parallel_submissions: int = Field(default=8, ge=1, description="Runs submitted at once by one tick.")
    tick_batch_size: int = Field(
        default=200,
        ge=1,
        description="Due runs one tick reads from a pool at a time (a page; Prefect's are at most 200); the tick "
        "reads page after page while runs are due and its deadline allows.",
    )
    tick_deadline_seconds: float = Field(
        default=45.0,
        gt=0,
        description="How long one tick keeps taking due runs; on Lambda, at most the invocation's remaining time "
        "less a margin. The next tick continues where it stopped.",
    )
    run_retention_seconds: float = Field(
        default=30 * 24 * 3600.0,
        ge=0,
        description="The embedded store deletes runs that ended (COMPLETED, FAILED, CRASHED, CANCELLED) longer ago "
        "than this, with their state history: the tick deletes up to 1,000 a time. 0 or `never` keeps them all.",
    )
    process_cancel_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A cancelled local process gets this long after SIGTERM before SIGKILL.",
    )
    aci_retention_seconds: float = Field(
        default=600.0,
        ge=0,
        description="Finished ACI container groups are deleted this long after their container ended (ACI allows "
        "100 groups per region); keep it above a few tick intervals so the tick reads each exit code first.",
    )
    aci_resource_groups: list[str] = Field(
        default_factory=list,
        description="Resource groups whose finished ACI container groups the tick deletes, as a JSON list of ids "
        '(["/subscriptions/S/resourceGroups/RG"]); groups this instance submitted to are swept as well.',
    )
    gcp_project: str | None = Field(
        default=None,
        description="Google Cloud project of cloud-run pools whose job configuration names none (Prefect's "
        "cloud-run-v2 templates take it from a credentials block, which push-pools does not read).",
    )
    cloud_run_job_retention_seconds: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="A Cloud Run job made by push-pools with no execution started or running for this long is "
        "deleted by the tick's sweep (jobs are reused across runs; a project holds at most 1,000).",
    )
    cloud_run_locations: list[str] = Field(
        default_factory=list,
        description="Cloud Run locations whose idle push-pools jobs the tick deletes, as a JSON list "
        '(["projects/P/locations/us-central1"]); locations this instance used are swept as well.',
    )

    @field_validator("run_retention_seconds", mode="before")
    @classmethod
    def _never_is_zero(cls, value: object) -> object:
        return 0 if isinstance(value, str) and value.strip().lower() == "never" else value

    @property
    def run_retention(self) -> timedelta | None:
        """How long ended runs are kept; None: forever."""
        return timedelta(seconds=self.run_retention_seconds) if self.run_retention_seconds else None

    @property
    def tick_interval(self) -> timedelta:
        return timedelta(seconds=self.tick_interval_seconds)

    @property
    def event_silence_timeout(self) -> timedelta:
        return timedelta(seconds=self.event_silence_timeout_seconds)

    @property
    def orphan_timeout(self) -> timedelta:
        return timedelta(seconds=self.orphan_timeout_seconds)

    @property
    def store_path(self) -> Path:
        return self.home / "store.db"
