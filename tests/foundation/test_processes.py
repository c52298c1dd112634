"""`dbmon up` and the CLI as an operator uses them."""

from __future__ import annotations

import json
import signal
import time

import psutil
import requests

from tests.harness import wait_for
from tests.services import free_port


def test_dbmon_up_serves_the_api_runs_scans_and_stops_cleanly(deployment):
    port = free_port()
    deployment.env["DBMON_API_PORT"] = str(port)
    deployment.write_config("assets:\n  - name: local-pg\n    engine: postgresql\n    host: 127.0.0.1\n"
                            "    database: postgres\n    user: postgres\n    insecure: true\n")
    up = deployment.start("up", "up")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(base + "/healthz") == 200, 60, interval=0.2, what="API healthy")
    children = psutil.Process(up.pid).children(recursive=True)
    commands = {" ".join(c.cmdline()).split("monitor_app.cli.main ", 1)[-1] for c in children}
    if deployment.mode == "embedded":  # one worker process that also schedules and watches, one API process pair
        assert commands == {"worker --with-beat-and-watcher", "api"}, commands
    else:
        assert {"worker", "beat", "watcher", "api"} <= commands, commands
    for part in ("worker", "beat", "watcher"):
        wait_for(lambda part=part: deployment.cli("health", part).returncode == 0, 30, what=f"{part} heartbeat")

    key = deployment.cli("apikey", "create", "--role", "operator", "--name", "ops", check=True).stdout.strip()
    # `up` syncs the config file at start; beat may probe the asset first, so scan it by id.
    [asset] = wait_for(lambda: requests.get(base + "/api/v1/assets?kind=database&source=config", headers={"X-API-Key": key},
                                            timeout=5).json()["items"], 30, what="config asset synced")
    result = deployment.cli("scan", "reachability", "--asset", str(asset["id"]), timeout=90)
    assert result.returncode == 0, result.stderr
    scanned = json.loads(result.stdout)
    assert scanned["status"] == "done" and scanned["result"]["status"] == "up"

    assets = wait_for(lambda: [a for a in requests.get(base + "/api/v1/assets?kind=database&source=config",
                                                       headers={"X-API-Key": key}, timeout=5).json()["items"]
                               if a["status"] == "up"], 30, what="asset up via the API")
    assert assets[0]["name"] == "local-pg"
    assert "local-pg" in requests.get(base + "/", headers={"X-API-Key": key}, timeout=5).text

    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=60) == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_the_config_watcher_syncs_assets_when_the_file_changes(deployment):
    deployment.write_config("assets: []\n")
    deployment.start_worker()
    deployment.start("watcher", "watcher")
    wait_for(lambda: "watch source config started" in deployment.log("watcher"), 30, what="watcher started")
    deployment.write_config("assets:\n  - name: appdb\n    engine: sqlite\n    path: /srv/app.db\n")

    def registered():
        from sqlalchemy import select
        from monitor_app.store.models import Asset

        with deployment.runtime.store.session() as s:
            return s.scalar(select(Asset).where(Asset.name == "appdb"))

    asset = wait_for(registered, 20, what="asset registered from the edited file")
    assert asset.engine == "sqlite"
    deployment.write_config("assets:\n  - name: appdb\n    engine: mysql\n")  # invalid: kept out
    wait_for(lambda: "invalid, keeping the last good one" in deployment.log("watcher"), 20, what="invalid noticed")
    assert registered().status != "gone"


def test_a_watcher_started_on_its_own_loads_the_assets_the_file_already_declares(deployment):
    # A split deployment (compose, scale-out) has no `dbmon up` to sync at startup.
    deployment.write_config("assets:\n  - name: preexisting\n    engine: sqlite\n    path: /srv/app.db\n")
    deployment.start_worker()
    deployment.start("watcher", "watcher")

    def registered():
        from sqlalchemy import select
        from monitor_app.store.models import Asset

        with deployment.runtime.store.session() as s:
            return s.scalar(select(Asset).where(Asset.name == "preexisting"))

    wait_for(registered, 30, what="asset loaded without an edit")


def test_scan_cli_rejects_bad_arguments_without_a_traceback(deployment):
    result = deployment.cli("scan", "host", "--asset", "3")
    assert result.returncode == 2 and "takes no asset" in result.stderr and "Traceback" not in result.stderr
    result = deployment.cli("scan", "bogus")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_scan_cli_reports_a_timeout_when_no_worker_runs(deployment):
    result = deployment.cli("scan", "host", "--timeout", "1")
    assert result.returncode == 3 and '"timeout"' in result.stderr


def _get(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def test_flower_sees_the_workers_tasks(deployment):
    port = free_port()
    key = deployment.cli("apikey", "create", "--role", "operator", "--name", "ops", check=True).stdout.strip()
    deployment.start_worker()
    deployment.start("flower", "flower", "--port", str(port))
    wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthcheck") == 200, 60, interval=0.3, what="flower up")
    # Flower answers its health check before its event receiver has subscribed, and task events
    # are not replayed: a first task may reach it only as "succeeded", without the name that the
    # "received" event carries. Once subscribed, it sees every event of every task.
    deadline = time.monotonic() + 60
    while True:
        run = deployment.scan("metrics.host_sample")
        tasks = wait_for(lambda run_id=run.id: (t := requests.get(f"http://127.0.0.1:{port}/api/tasks", timeout=5,
                                                                    headers={"X-API-Key": key}).json())
                         and run_id in t and t[run_id]["state"] == "SUCCESS" and t, 30, what="task in flower")
        if tasks[run.id]["name"] is not None or time.monotonic() > deadline:
            break
    assert tasks[run.id]["name"] == "metrics.host_sample"
