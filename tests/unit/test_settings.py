"""Settings: explicit argument > environment > default, with one prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from push_pools.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUSH_POOL_HOME", raising=False)
    settings = Settings()
    assert settings.home == Path("~/.push-pools").expanduser()
    assert settings.orchestrator == "local"
    assert settings.webhook_secret is None
    assert settings.store_path == settings.home / "store.db"


def test_environment_beats_default_and_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSH_POOL_ORPHAN_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("PUSH_POOL_WEBHOOK_SECRET", "from-env")
    assert Settings().orphan_timeout_seconds == 120
    assert Settings(orphan_timeout_seconds=30).orphan_timeout_seconds == 30
    secret = Settings().webhook_secret
    assert secret is not None
    assert secret.get_secret_value() == "from-env"
    assert "from-env" not in repr(Settings())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUSH_POOL_ORCHESTRATOR", "airflow"),
        ("PUSH_POOL_SUBMIT_ATTEMPTS", "0"),
        ("PUSH_POOL_TICK_INTERVAL_SECONDS", "soon"),
    ],
)
def test_bad_environment_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_every_setting_is_described() -> None:
    assert all(field.description for field in Settings.model_fields.values())
