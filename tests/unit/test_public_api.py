"""The public surface is deliberate: this test changes only when the API does."""

from __future__ import annotations

from pathlib import Path

import push_pools

EXPECTED = {
    "AlreadyExistsError", "AuthenticationError", "ConfigurationError", "Deployment", "Dispatcher", "FlowRun",
    "InfrastructureRef", "InfrastructureState", "InfrastructureStatus", "JobVariablesError", "NotFoundError",
    "OrchestratorError", "OrchestratorUnavailableError", "PayloadError", "PayloadTooLargeError",
    "PermanentSubmissionError", "PushPoolError", "Settings", "State", "StateType", "SubmissionError",
    "SubmissionOutcome", "SubmissionStatus", "TemplateError", "TickReport", "TransientSubmissionError", "WorkPool",
    "__version__", "check_base_job_template", "merge_job_variables", "render_job_configuration", "tick",
    "validate_job_variables",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(push_pools.__all__) == EXPECTED
    for name in push_pools.__all__:
        assert hasattr(push_pools, name), name


def test_every_error_is_a_push_pool_error() -> None:
    errors = [getattr(push_pools, name) for name in EXPECTED if name.endswith("Error")]
    assert all(issubclass(error, push_pools.PushPoolError) for error in errors)


def test_the_package_is_typed() -> None:
    assert (Path(push_pools.__file__).parent / "py.typed").exists()
