"""A PostgreSQL server on this host, asked where its files are: its data directory, WAL and config
files are watched without a watch entry, config diffs know what needs a restart, and a setting
left waiting for one is an event. A private cluster: its files are edited and its mode changed."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from monitor_app.files import watch_sync
from monitor_app.files.scan_run import run_scan
from monitor_app.files.watch_targets import PG_SERVER_WRITTEN
from monitor_app.store.models import Asset
from monitor_app.store.models.files import FileWatch
from tests.posture.clusters import PrivateCluster


@pytest.fixture(scope="module")
def files_cluster():
    cluster = None
    try:
        cluster = PrivateCluster()
        cluster.start(listen="")
        cluster.hba = (cluster.data / "pg_hba.conf").read_text()
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()


def _register(files_rt, cluster) -> int:
    with files_rt.store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name="local-pg", source="config", external_id="local-pg",
                      labels={}, connection=cluster.connection(), details={}, status="up")
        s.add(asset)
        s.flush()
        return asset.id


def _watches(files_rt) -> dict[str, FileWatch]:
    with files_rt.store.session() as s:
        rows = s.scalars(select(FileWatch).where(FileWatch.status != "removed")).all()
        s.expunge_all()
    return {w.path: w for w in rows}


def test_a_local_server_s_files_are_watched_and_its_config_changes_explained(files_rt, files_cluster):
    # The cluster is shared by both store backends' runs: each starts from initdb's files.
    (files_cluster.data / "pg_hba.conf").write_text(files_cluster.hba)
    files_cluster.run("ALTER SYSTEM RESET ALL", "SELECT pg_reload_conf()")
    asset_id = _register(files_rt, files_cluster)
    out = watch_sync.sync(files_rt)
    data = str(files_cluster.data)
    watches = _watches(files_rt)
    assert set(watches) == {data, f"{data}/pg_wal"}
    by_kind = {tuple(w.kinds): w for w in _watches_all(files_rt)}
    assert by_kind[("data",)].spec["exclude"] == list(PG_SERVER_WRITTEN)
    config = by_kind[("config",)]
    assert sorted(config.spec["include"]) == ["pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf", "postgresql.conf"]
    assert all(w.asset_id == asset_id for w in by_kind.values())
    for watch_id in out["baseline"]:
        assert run_scan(files_rt, watch_id, reason="baseline")["first"]

    files_cluster.run("ALTER SYSTEM SET shared_buffers = '256MB'", "ALTER SYSTEM SET work_mem = '8MB'",
                      "SELECT pg_reload_conf()")
    with open(files_cluster.data / "pg_hba.conf", "a") as fh:
        fh.write("host all all 0.0.0.0/0 trust\n")
    run_scan(files_rt, config.id)
    changed = {e.payload["path"].rsplit("/", 1)[1]: e for e in files_rt.events("file.config_changed")}
    assert set(changed) == {"postgresql.auto.conf", "pg_hba.conf"}, [(e.type, e.summary) for e in files_rt.events()]
    auto = {d["parameter"]: d for d in changed["postgresql.auto.conf"].payload["diff"]}
    assert auto["shared_buffers"]["restart_required"] is True and auto["work_mem"]["restart_required"] is False
    assert changed["pg_hba.conf"].severity == "critical"
    (pending,) = files_rt.events("file.config_pending_restart")
    assert pending.payload["pending_restart"] == ["shared_buffers"]
    run_scan(files_rt, config.id)  # still waiting: not announced again
    assert len(files_rt.events("file.config_pending_restart")) == 1

    os.chmod(files_cluster.data, 0o750)
    try:
        run_scan(files_rt, by_kind[("data",)].id)
    finally:
        os.chmod(files_cluster.data, 0o700)
    (opened,) = files_rt.events("file.permissions_changed")
    assert opened.severity == "critical" and opened.payload["path"] == data


def _watches_all(files_rt) -> list[FileWatch]:
    with files_rt.store.session() as s:
        rows = s.scalars(select(FileWatch)).all()
        s.expunge_all()
    return list(rows)


def test_a_server_that_cannot_be_asked_keeps_its_watches(files_rt, files_cluster):
    asset_id = _register(files_rt, files_cluster)
    watch_sync.sync(files_rt)
    before = {w.key for w in _watches_all(files_rt) if w.status != "removed"}
    with files_rt.store.session() as s:
        s.get(Asset, asset_id).connection = {**files_cluster.connection(), "port": 1}
    out = watch_sync.sync(files_rt)
    assert out["removed"] == [] and {w.key for w in _watches_all(files_rt) if w.status != "removed"} == before


def test_a_server_s_files_are_watched_once_however_many_of_its_databases_are_assets(files_rt, files_cluster):
    first = _register(files_rt, files_cluster)
    with files_rt.store.session() as s:
        for name in ("second-db", "third-db"):
            s.add(Asset(kind="database", engine="postgresql", name=name, source="config", external_id=name,
                        labels={}, connection=files_cluster.connection(), details={}, status="up"))
    watch_sync.sync(files_rt)
    watches = [w for w in _watches_all(files_rt) if w.status != "removed"]
    assert len(watches) == 3 and {w.asset_id for w in watches} == {first}


def test_a_server_not_found_up_is_not_asked_where_its_files_are(files_rt, files_cluster):
    asset_id = _register(files_rt, files_cluster)
    with files_rt.store.session() as s:
        s.get(Asset, asset_id).status = "unknown"  # just registered: its probe has not answered yet
    out = watch_sync.sync(files_rt)
    assert out["baseline"] == [] and _watches_all(files_rt) == []
    with files_rt.store.session() as s:
        s.get(Asset, asset_id).status = "up"
    assert len(watch_sync.sync(files_rt)["baseline"]) == 3
