"""The running system, in both modes, with real worker and beat processes."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import func, select

from monitor_app.store.models import Asset, Event, MetricSample, TaskRun
from tests.harness import wait_for
from tests.peers import StalledServer, closed_port


def pg_asset_yaml(name: str, port: int = 5432, database: str = "postgres") -> str:
    return (f"  - name: {name}\n    engine: postgresql\n    host: 127.0.0.1\n    port: {port}\n"
            f"    database: {database}\n    user: postgres\n    password_env: DBMON_TEST_PG_PASSWORD\n"
            "    insecure: true\n")  # the shared test server is trust-auth without TLS


def api_client(deployment, role="operator"):
    from api import create_app
    from monitor_app.access.api_keys import create_key

    app = create_app(deployment.runtime)
    with deployment.runtime.store.session() as s:
        _, key = create_key(s, name=f"test-{role}", role=role)
    return app.test_client(), {"X-API-Key": key}


def events_of(deployment, type_, asset_id=None):
    with deployment.runtime.store.session() as s:
        q = select(Event).where(Event.type == type_)
        if asset_id is not None:
            q = q.where(Event.asset_id == asset_id)
        return s.scalars(q.order_by(Event.id)).all()


def asset_named(deployment, name):
    with deployment.runtime.store.session() as s:
        return s.scalar(select(Asset).where(Asset.name == name))


def test_it_runs_a_scan_requested_over_the_api_on_a_real_worker(deployment):
    deployment.start_worker()
    client, headers = api_client(deployment)

    resp = client.post("/api/v1/scans", json={"kind": "host"}, headers=headers)
    assert resp.status_code == 202
    scan_id = resp.json["id"]
    result = wait_for(lambda: (r := client.get(f"/api/v1/scans/{scan_id}", headers=headers).json)
                      and r["status"] == "done" and r, 30, what="scan done")

    assert 0.0 <= result["result"]["samples"]["host.cpu_percent"] <= 100.0
    assert result["requested_by"] == "key:test-operator"
    with deployment.runtime.store.session() as s:
        host = s.get(Asset, result["result"]["asset_id"])
        assert host.kind == "host"
        names = set(s.scalars(select(MetricSample.name).where(MetricSample.asset_id == host.id)))
    assert {"host.cpu_percent", "host.memory_percent", "host.disk_percent"} <= names


def test_it_records_one_event_per_reachability_transition(deployment, monkeypatch):
    deployment.env["DBMON_TEST_PG_PASSWORD"] = ""
    deployment.write_config("assets:\n" + pg_asset_yaml("main-pg"))
    deployment.start_worker()

    assert deployment.scan("assets.sync_config").status == "done"
    asset = asset_named(deployment, "main-pg")
    first = deployment.scan("assets.check_reachability", {"asset_id": asset.id})
    assert first.result["status"] == "up", first.result
    again = deployment.scan("assets.check_reachability", {"asset_id": asset.id})
    assert again.result == {**again.result, "status": "up", "changed": False}
    assert len(events_of(deployment, "asset.up", asset.id)) == 1

    deployment.write_config("assets:\n" + pg_asset_yaml("main-pg", port=closed_port()))
    assert deployment.scan("assets.sync_config").result["updated"] == ["main-pg"]
    down = deployment.scan("assets.check_reachability", {"asset_id": asset.id})
    assert down.result["status"] == "down"
    [event] = events_of(deployment, "asset.down", asset.id)
    assert event.severity == "critical" and "unreachable" in event.summary


def test_it_redelivers_a_task_whose_worker_was_killed_mid_task(deployment):
    stalled = StalledServer()
    try:
        # The killed worker cannot give back the slot its probe held: the redelivered probe waits
        # for that lease to expire (30 s by default).
        deployment.env["DBMON_SERVER_CONNECTION_LEASE"] = "6"
        deployment.write_config("assets:\n" + pg_asset_yaml("hangs", port=stalled.port))
        deployment.start_worker("worker-a")
        deployment.start("beat", "beat")
        assert deployment.scan("assets.sync_config").status == "done"
        asset = asset_named(deployment, "hangs")

        run_id = deployment.runtime.dispatch("assets.check_reachability", {"asset_id": asset.id})
        wait_for(lambda: deployment.runtime.ledger.get(run_id).status == "running", 20, what="task running")
        deployment.kill("worker-a")  # SIGKILL to the worker and its pool, mid-probe
        assert deployment.runtime.ledger.get(run_id).status == "running"

        deployment.start_worker("worker-b")
        run = deployment.wait_run(run_id, timeout=60)
        assert run.status == "done", run.error
        assert run.result["status"] == "down"
        assert run.attempts >= 2
        assert len(events_of(deployment, "asset.down", asset.id)) == 1
    finally:
        stalled.close()


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_stopping_worker_hands_its_unfinished_run_back_at_once(deployment, pool):
    stalled = StalledServer()
    try:
        # A probe that would hang for a minute, and a lease that would keep it "running" for five.
        deployment.env.update({"DBMON_PROBE_TIMEOUT": "60", "DBMON_TASK_LEASE_SECONDS": "300",
                               "DBMON_WORKER_SHUTDOWN_SECONDS": "1"})
        deployment.write_config("assets:\n" + pg_asset_yaml("hangs", port=stalled.port))
        # The thread pool is the single-machine worker's (it cannot kill a thread: it exits instead).
        worker = deployment.start_worker("worker-a", *(["--with-beat-and-watcher"] if pool == "threads" else []))
        assert deployment.scan("assets.sync_config").status == "done"
        asset = asset_named(deployment, "hangs")
        run_id = deployment.runtime.dispatch("assets.check_reachability", {"asset_id": asset.id})
        wait_for(lambda: deployment.runtime.ledger.get(run_id).status == "running", 20, what="task running")

        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)  # as `dbmon up` or an orchestrator stops it
        worker.wait(timeout=30)
        stopped_in = time.monotonic() - started
        deployment.procs.pop("worker-a", None)
        assert stopped_in < 6, stopped_in
        run = deployment.runtime.ledger.get(run_id)
        # The sync's own probe of the asset may hold its one slot: then this run was waiting for it,
        # and stopping ends that wait at once instead.
        assert run.status == "queued" and run.error in (
            "handed back by a stopping worker", f"BudgetExhausted: 127.0.0.1:{stalled.port}: this process is stopping; deferred")

        stalled.close()  # the target now refuses at once
        if pool == "prefork":
            deployment.start("beat", "beat")
        deployment.start_worker("worker-b", *(["--with-beat-and-watcher"] if pool == "threads" else []))
        # Well inside the slot lease (30 s): the stopped worker gave back the slot its probe held.
        run = deployment.wait_run(run_id, timeout=15)
        assert run.status == "done" and run.result["status"] == "down", run.error
    finally:
        stalled.close()


def test_a_worker_stopped_as_a_process_group_lets_its_running_task_finish(deployment):
    """systemd and `dbmon up` send SIGTERM to the worker's pool processes too; the task still completes."""
    stalled = StalledServer()
    try:
        deployment.env.update({"DBMON_PROBE_TIMEOUT": "3", "DBMON_WORKER_SHUTDOWN_SECONDS": "20"})
        deployment.write_config("assets:\n" + pg_asset_yaml("slow", port=stalled.port))
        worker = deployment.start_worker("worker-a")
        assert deployment.scan("assets.sync_config").status == "done"
        asset = asset_named(deployment, "slow")
        run_id = deployment.runtime.dispatch("assets.check_reachability", {"asset_id": asset.id})
        wait_for(lambda: deployment.runtime.ledger.get(run_id).status == "running", 20, what="task running")

        started = time.monotonic()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        stopped_in = time.monotonic() - started
        deployment.procs.pop("worker-a", None)
        run = deployment.runtime.ledger.get(run_id)
        # The probe ran to its 3 s timeout in a pool process that outlived the signal.
        assert run.status == "done" and run.result["status"] == "down", (run.status, run.error)
        # The probe's 3 s and an orderly stop, with coverage on a loaded machine; a stuck stop
        # takes the harness's 30 s.
        assert stopped_in < 15, stopped_in
        assert "exited with 'signal 15" not in deployment.log("worker-a")
    finally:
        stalled.close()


def test_it_checks_healthy_assets_while_another_one_hangs(deployment):
    stalled = StalledServer()
    try:
        deployment.env["DBMON_TEST_PG_PASSWORD"] = ""
        deployment.write_config("assets:\n" + pg_asset_yaml("hangs", port=stalled.port)
                                + pg_asset_yaml("refuses", port=closed_port()) + pg_asset_yaml("healthy"))
        deployment.start_worker()
        # The sync ends by sending the reachability sweep: one probe per new asset, at once.
        assert deployment.scan("assets.sync_config").status == "done"
        started = time.monotonic()
        wait_for(lambda: asset_named(deployment, "healthy").status == "up", 15, what="healthy asset up")
        wait_for(lambda: asset_named(deployment, "refuses").status == "down", 15, what="refusing asset down")
        healthy_after = time.monotonic() - started
        # The hung probe is still waiting for its timeout while the others are done.
        assert asset_named(deployment, "hangs").status == "unknown"
        assert healthy_after < 4.0
        wait_for(lambda: asset_named(deployment, "hangs").status == "down", 30, what="hung asset down")
        hung = asset_named(deployment, "hangs")
        assert hung.next_check_at > hung.last_checked_at
    finally:
        stalled.close()


@pytest.mark.slow
@pytest.mark.deployment
def test_it_resumes_work_after_the_redis_broker_restarts(tmp_path):
    from tests.harness import Deployment

    d = Deployment("distributed", tmp_path)
    try:
        d.migrate()
        d.start_worker()
        d.start("beat", "beat")
        assert d.scan("metrics.host_sample").status == "done"

        d.redis.stop()
        lost_run = d.runtime.dispatch("metrics.host_sample", {})  # broker down: only the ledger has it
        time.sleep(1.0)
        d.redis.start()

        try:
            assert d.wait_run(lost_run, timeout=90).status == "done"
            assert d.scan("metrics.host_sample", timeout=60).status == "done"
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker\n{d.log('worker')[-3000:]}\n--- beat\n"
                                 f"{_unredirected(d.log('beat'))[-3000:]}") from None
        assert "ready." in d.log("worker")
    finally:
        d.close()


def _unredirected(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "celery.redirected" not in line)


def test_it_marks_a_run_failed_after_it_was_lost_too_often(store):
    from monitor_app.platform.task_ledger import LeasePolicy, Ledger
    from monitor_app.store.base import utcnow
    from datetime import timedelta

    ledger = Ledger(store, LeasePolicy(running_lease=1, queued_grace=1, max_sends=2))
    run_id = ledger.record("metrics.host_sample", {}, queue="metrics")
    sent = []
    later = utcnow() + timedelta(seconds=5)
    assert ledger.redeliver(lambda *a: sent.append(a), now=later) == {"resent": 1, "gave_up": 0, "waiting": 0}
    result = ledger.redeliver(lambda *a: sent.append(a), now=later + timedelta(seconds=5))
    assert result == {"resent": 0, "gave_up": 1, "waiting": 0}
    assert sent == [("metrics.host_sample", {}, run_id, "metrics")]
    run = ledger.get(run_id)
    assert run.status == "failed" and "2 deliveries" in run.error
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(TaskRun)) == 1
