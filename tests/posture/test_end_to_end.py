"""Through the real processes: a `posture` scan in a worker, its events, and the built-in rule
paging on the critical ones, in the embedded and distributed modes."""

from __future__ import annotations

from sqlalchemy import select

from monitor_app.store.models import Asset, Event, TaskRun
from monitor_app.store.models.alerting import Alert
from tests.harness import wait_for

CRITICAL = {"hba_trust_remote", "ssl_off_remote", "superuser_role:app"}


def test_a_posture_scan_opens_findings_and_pages_on_the_critical_ones(deployment, exposed_cluster):
    deployment.write_config(
        f"assets:\n  - name: exposed\n    engine: postgresql\n    host: {exposed_cluster.root}\n"
        f"    port: {exposed_cluster.port}\n    database: postgres\n    user: postgres\n    sslmode: disable\n    insecure: true\n")
    deployment.start_worker()
    assert deployment.scan("assets.sync_config").status == "done"
    with deployment.runtime.store.session() as s:
        asset_id = s.scalar(select(Asset.id).where(Asset.name == "exposed"))

    run = deployment.scan("posture.check", {"asset_id": asset_id})
    assert run.status == "done", run.error
    assert CRITICAL <= set(run.result["opened"]) and run.result["not_checked"] == {}

    def alerts():
        with deployment.runtime.store.session() as s:
            rows = s.scalars(select(Alert).where(Alert.rule == "PostureCriticalFinding",
                                                 Alert.state == "firing")).all()
            return {a.labels["finding"] for a in rows} == CRITICAL and rows

    firing = wait_for(alerts, 30, what="a firing alert per critical finding")
    assert all(a.labels["asset"] == "exposed" for a in firing)

    again = deployment.scan("posture.check")  # no asset: every PostgreSQL asset
    assert again.status == "done" and again.result["asset_ids"] == [asset_id]
    due = deployment.scan("posture.check_due")
    assert due.status == "done" and due.result["dispatched"] == 0  # just checked

    def second_run_done():
        with deployment.runtime.store.session() as s:
            runs = s.scalars(select(TaskRun).where(TaskRun.name == "posture.check", TaskRun.status == "done")).all()
        return len([r for r in runs if (r.kwargs or {}).get("asset_id") == asset_id]) >= 2

    wait_for(second_run_done, 30, what="the fanned-out check")
    with deployment.runtime.store.session() as s:
        opened = s.scalars(select(Event.payload).where(Event.type == "posture.finding_opened",
                                                       Event.asset_id == asset_id)).all()
    assert len(opened) == len(run.result["opened"])  # the second check changed nothing, said nothing
