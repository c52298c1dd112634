"""Actions that change what dbmon watches or what runs inside a monitored database are audited:
event trigger install and removal (CLI and automatic), discovery runs and config reloads."""

from __future__ import annotations

import os
import pwd
import uuid

import psycopg2
import pytest
import yaml
from sqlalchemy import select

from monitor_app.store.models import AuditEntry
from tests.harness import wait_for
from tests.peers import closed_port
from tests.schema.conftest import add_asset, make_runtime, pg_connection


def os_actor() -> str:
    return f"cli:{pwd.getpwuid(os.getuid()).pw_name} (uid {os.getuid()})"


def audit_rows(store, **match) -> list[AuditEntry]:
    with store.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    return [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]


@pytest.fixture()
def plain_role(pg_database):
    """A login role without superuser rights, unique to this test."""
    name = f"dbmon_plain_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(pg_database[1])
    conn.autocommit = True
    conn.cursor().execute(f"CREATE ROLE {name} LOGIN")
    yield name
    conn.cursor().execute(f"DROP ROLE {name}")
    conn.close()


@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
def test_it_audits_trigger_install_and_removal_from_the_cli(deployment, pg_database, plain_role):
    name, _ = pg_database
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:5432/{name}"  # trust auth: the password is only carried
    assert deployment.cli("schema", "install-trigger", "--dsn", dsn).returncode == 0
    assert deployment.cli("schema", "uninstall-trigger", "--dsn", dsn).returncode == 0
    refused = deployment.cli("schema", "install-trigger", "--dsn", f"postgresql://{plain_role}@127.0.0.1:5432/{name}")
    assert refused.returncode == 2 and "superuser" in refused.stderr

    rows = audit_rows(deployment.runtime.store)
    where = f"postgresql://127.0.0.1:5432/{name}"
    assert [(r.actor, r.action, r.target, r.outcome) for r in rows] == [
        (os_actor(), "schema.trigger.install", where, "ok"),
        (os_actor(), "schema.trigger.uninstall", where, "ok"),
        (os_actor(), "schema.trigger.install", where, "invalid"),
    ]
    assert rows[1].detail == {"was_installed": True}
    assert "superuser" in rows[2].detail["error"]
    assert not any("s3cret" in f"{r.target}{r.detail}" for r in rows)


def test_it_audits_the_automatic_trigger_install_as_system(store, pg_database, tmp_path):
    rt = make_runtime(store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(store, name="orders", engine="postgresql", connection=pg_connection(pg_database[1]))
    from monitor_app.schema.check import run_check

    run_check(rt, asset_id)
    run_check(rt, asset_id)  # already installed: nothing more to record

    rows = audit_rows(store, action="schema.trigger.install")
    assert [(r.actor, r.target, r.outcome, r.detail) for r in rows] == \
        [("system", "asset:orders", "ok", {"automatic": True})]


def test_it_audits_a_config_file_the_watcher_rejected(store, tmp_path):
    from workers.watch_sources.config_file import ConfigFileSource

    rt = make_runtime(store, tmp_path, {})
    emitted = []
    source = ConfigFileSource(rt, lambda task, kwargs: emitted.append(task))
    source.start()
    assert emitted == ["assets.sync_config"]  # the start-up sync of whatever the file declares
    emitted.clear()
    try:
        # Replaced whole, as Deployment.write_config does: a watcher that read a half-written (empty,
        # so valid) file would sync it, which a slow parallel run makes likely.
        staged = tmp_path / "dbmon.yaml.tmp"
        staged.write_text("assets:\n  - name: x\n    engine: postgresql\n    port: 99999\n")
        staged.replace(tmp_path / "dbmon.yaml")
        rows = wait_for(lambda: audit_rows(store, action="config.reload"), 10, what="audit row")
    finally:
        source.stop()
    assert [(r.actor, r.outcome, r.target) for r in rows] == [("watcher", "invalid", str(tmp_path / "dbmon.yaml"))]
    assert any("port" in e for e in rows[0].detail["errors"])
    assert emitted == []


def test_it_audits_discovery_runs_and_config_reloads_on_a_real_worker(deployment, docker_engine):
    deployment.write_config(yaml.safe_dump({"assets": []}))
    deployment.start_worker()
    store = deployment.runtime.store

    assert deployment.scan("assets.sync_config").status == "done"
    assert deployment.scan("containers.reconcile").status == "done"
    found = deployment.cli("discover", "--json")
    assert found.returncode == 0, found.stderr

    # The engine goes away: the run fails, and the failure is on record before any retry succeeds.
    deployment.write_config(yaml.safe_dump({"containers": {"docker_url": f"tcp://127.0.0.1:{closed_port()}"}}))
    deployment.runtime.dispatch("containers.reconcile", {}, requested_by="test")
    wait_for(lambda: audit_rows(store, action="discovery.run", outcome="error"), 30, what="failed discovery row")

    rows = audit_rows(store)
    assert [(r.actor, r.action, r.outcome) for r in rows] == [
        ("test", "config.reload", "ok"),
        ("test", "discovery.run", "ok"),
        (os_actor(), "discovery.run", "ok"),
        ("test", "discovery.run", "error"),
    ]
    assert rows[1].detail["seen"] >= 0 and rows[1].detail["run_id"]
    assert "docker engine unreachable" in rows[3].detail["error"]
