"""push-pools: serverless push work pools. Scheduled flow runs submitted straight to AWS ECS, Google Cloud Run
jobs or Azure Container Instances by a function, with no worker, speaking Prefect's language."""

from __future__ import annotations

from push_pools.dispatcher import Dispatcher
from push_pools.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigurationError,
    JobVariablesError,
    NotFoundError,
    OrchestratorError,
    OrchestratorUnavailableError,
    PayloadError,
    PayloadTooLargeError,
    PermanentSubmissionError,
    PushPoolError,
    SubmissionError,
    TemplateError,
    TransientSubmissionError,
)
from push_pools.models import (
    Deployment,
    FlowRun,
    InfrastructureRef,
    InfrastructureState,
    InfrastructureStatus,
    State,
    StateType,
    SubmissionOutcome,
    SubmissionStatus,
    WorkPool,
)
from push_pools.settings import Settings
from push_pools.templating import (
    check_base_job_template,
    merge_job_variables,
    render_job_configuration,
    validate_job_variables,
)
from push_pools.tick import TickReport, tick

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "ConfigurationError",
    "Deployment",
    "Dispatcher",
    "FlowRun",
    "InfrastructureRef",
    "InfrastructureState",
    "InfrastructureStatus",
    "JobVariablesError",
    "NotFoundError",
    "OrchestratorError",
    "OrchestratorUnavailableError",
    "PayloadError",
    "PayloadTooLargeError",
    "PermanentSubmissionError",
    "PushPoolError",
    "Settings",
    "State",
    "StateType",
    "SubmissionError",
    "SubmissionOutcome",
    "SubmissionStatus",
    "TemplateError",
    "TickReport",
    "TransientSubmissionError",
    "WorkPool",
    "__version__",
    "check_base_job_template",
    "merge_job_variables",
    "render_job_configuration",
    "tick",
    "validate_job_variables",
]
