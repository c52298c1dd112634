"""`dbmon health`: what container healthchecks run. Healthy only while the process's own loop runs."""

from __future__ import annotations

import signal
import time

from tests.harness import wait_for
from tests.services import free_port


def _healthy(deployment, process: str, *extra: str) -> bool:
    return deployment.cli("health", process, *extra, timeout=30).returncode == 0


def test_it_reports_worker_beat_and_watcher_by_their_heartbeats(deployment):
    deployment.write_config("assets: []\n")
    for process in ("worker", "beat", "watcher"):
        result = deployment.cli("health", process)
        assert result.returncode == 1 and "no " in result.stdout, result.stdout
    deployment.start_worker()
    deployment.start("beat", "beat")
    deployment.start("watcher", "watcher")
    for process in ("worker", "beat", "watcher"):
        wait_for(lambda p=process: _healthy(deployment, p), 60, 0.5, f"{process} healthy")

    deployment.kill("watcher", signal.SIGKILL)
    time.sleep(2.5)
    stale = deployment.cli("health", "watcher", "--max-age", "2")
    assert stale.returncode == 1 and "heartbeat" in stale.stdout, stale.stdout
    assert _healthy(deployment, "beat", "--max-age", "2")


def test_it_reports_the_api_by_healthz(deployment):
    port = free_port()
    deployment.env["DBMON_API_PORT"] = str(port)
    down = deployment.cli("health", "api", "--timeout", "1")
    assert down.returncode == 1 and str(port) in down.stdout
    deployment.start("api", "api")
    wait_for(lambda: _healthy(deployment, "api"), 60, 0.5, "api healthy")
