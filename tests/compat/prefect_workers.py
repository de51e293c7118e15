"""Ask Prefect's own workers (installed in `.venv-prefect-workers` by `make test`) for their default base job
templates and for how they render them: the reference every Prefect-compatibility test compares with."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
PREFECT_PYTHON = ROOT / ".venv-prefect-workers" / "bin" / "python"
EXPORTER = Path(__file__).with_name("prefect_worker_templates.py")


def prefect_renderings(cases: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """For each (worker type, job variables): `{"template": Prefect's default, "rendered": Prefect's rendering}`."""
    if not PREFECT_PYTHON.exists():
        pytest.fail(f"{PREFECT_PYTHON} is missing: `make test` builds it (Prefect and its worker integrations)")
    request = json.dumps([{"type": kind, "values": values} for kind, values in cases])
    result = subprocess.run(
        [str(PREFECT_PYTHON), str(EXPORTER)], input=request, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    renderings: list[dict[str, Any]] = json.loads(result.stdout)
    return renderings


def prefect_default_template(worker_type: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The worker's default template (`values`: job variables its rendering needs, such as required ones)."""
    template: dict[str, Any] = prefect_renderings([(worker_type, values or {})])[0]["template"]
    return template
