"""A real Prefect server for the e2e tests and the benchmark: installed in `.venv-prefect` (built by `make test`),
started on 127.0.0.1 with its own PREFECT_HOME (SQLite) and basic auth, and stopped by whoever started it.

Basic auth (`PREFECT_SERVER_API_AUTH_STRING`) is on so that the whole path, flows included, runs as against a
protected self-hosted server, and a wrong credential meets a real 401.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from push_pools.orchestrators.prefect.api import PrefectConnection

REPO = Path(__file__).resolve().parents[3]
PREFECT_VENV = REPO / ".venv-prefect"
PREFECT_BIN = PREFECT_VENV / "bin"
AUTH_STRING = "push-pools:e2e-password"
STARTUP_TIMEOUT = 90.0

FLOW_SOURCE = """\
from prefect import flow


@flow(log_prints=True)
def hello(name: str = "push-pools") -> str:
    print(f"hello from {name}")
    return name
"""

DEPLOY_SCRIPT = """\
import sys

from prefect import flow

flow_dir, pool, name = sys.argv[1:4]
deployment_id = flow.from_source(source=flow_dir, entrypoint="hello.py:hello").deploy(
    name=name, work_pool_name=pool, print_next_steps=False, build=False, push=False
)
print(deployment_id)
"""


def require_prefect_venv() -> None:
    if not (PREFECT_BIN / "prefect").exists():
        raise RuntimeError(
            f"{PREFECT_VENV} is missing: build it with `make .venv-prefect/bin/prefect` (make test does)"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrefectServer:
    """One `prefect server start` process and the directory it keeps its database in."""

    home: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.home / "server.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def connection(self, auth_string: str | None = AUTH_STRING) -> PrefectConnection:
        return PrefectConnection(api_url=self.api_url, auth_string=auth_string)

    def client_env(self) -> dict[str, str]:
        """What a Prefect client (a flow, `prefect deploy`, a worker) needs to reach this server."""
        return {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_API_AUTH_STRING": AUTH_STRING,
            "PREFECT_HOME": str(self.home / "client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def start(self) -> None:
        require_prefect_venv()
        self.home.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # another process may take the probed port before the server binds it
            self.port = free_port()
            self._spawn()
            if self._wait_until_healthy():
                return
            self.stop()
        raise RuntimeError(f"the Prefect server did not start; see {self.log_path}")

    def _spawn(self) -> None:
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_API_AUTH_STRING": AUTH_STRING,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        }
        for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_PROFILE"):
            env.pop(name, None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(PREFECT_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its uvicorn child goes with it when the group is stopped
            )

    def _wait_until_healthy(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        auth = tuple(AUTH_STRING.split(":", 1))
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                if httpx.post(f"{self.api_url}/work_pools/filter", auth=auth, json={}, timeout=2).is_success:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def deploy_hello_flow(self, pool_name: str, deployment_name: str) -> str:
        """Deploy a real flow with Prefect's own `flow.from_source(...).deploy(...)`; returns the deployment id."""
        flow_dir = self.home / "flows"
        flow_dir.mkdir(exist_ok=True)
        (flow_dir / "hello.py").write_text(FLOW_SOURCE)
        script = self.home / "deploy.py"
        script.write_text(DEPLOY_SCRIPT)
        result = subprocess.run(
            [str(PREFECT_BIN / "python"), str(script), str(flow_dir), pool_name, deployment_name],
            env={**os.environ, **self.client_env()},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"flow.deploy failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout.strip().splitlines()[-1]
