"""The derived PostgreSQL `data` watch on a real `initdb` data directory: it keeps the directories
(each database's among them) and the top-level files, and none of what the server writes all day
(relation files, global/, the transaction and statistics state), so a server with a thousand
databases is a watch of a few thousand entries, not 300,000. A database directory's mode is still
reported."""

from __future__ import annotations

import os

import pytest

from monitor_app.files import watch_sync
from monitor_app.files.compare import compare
from monitor_app.files.scan_run import run_scan
from monitor_app.files.tree_scan import ScanSpec, scan
from monitor_app.files.watch_targets import PG_SERVER_WRITTEN, for_postgresql
from monitor_app.store.models import Asset
from tests.posture.clusters import PrivateCluster

SERVER_STATE = ("pg_commit_ts", "pg_dynshmem", "pg_logical", "pg_multixact", "pg_notify", "pg_replslot", "pg_serial",
                "pg_snapshots", "pg_stat", "pg_stat_tmp", "pg_subtrans", "pg_twophase", "pg_xact")


@pytest.fixture(scope="module")
def initdb_dir():
    cluster = None
    try:
        cluster = PrivateCluster()  # initdb only: the directory as PostgreSQL 15 lays it out
        yield str(cluster.data)
    finally:
        if cluster is not None:
            cluster.stop()


def _data_watch(data: str, asset_id: int = 7):
    locations = {"data_directory": data, "config_file": f"{data}/postgresql.conf", "hba_file": f"{data}/pg_hba.conf",
                 "ident_file": f"{data}/pg_ident.conf"}
    (watch,) = [w for w in for_postgresql(asset_id, locations) if w.kinds == ("data",)]
    return watch


def _databases(data: str) -> list[str]:
    return sorted(f"{data}/base/{oid}" for oid in os.listdir(f"{data}/base"))


def test_the_scan_keeps_directories_and_top_level_files_and_no_relation_file(initdb_dir):
    data = initdb_dir
    watch = _data_watch(data)
    states = scan(ScanSpec.of_watch(data, watch.spec)).states
    databases = _databases(data)
    assert len(databases) == 3  # template1, template0, postgres
    top_level = {f"{data}/{name}" for name in ("PG_VERSION", "postgresql.conf", "postgresql.auto.conf",
                                               "pg_hba.conf", "pg_ident.conf")}
    directories = {f"{data}/{d}" for d in ("base", "global", "pg_tblspc", *SERVER_STATE)}
    assert {data, *databases, *top_level, *directories} == set(states)
    on_disk = sum(len(files) + len(dirs) for _, dirs, files in os.walk(data))
    relation_files = [f"{d}/{name}" for d in databases for name in os.listdir(d)]
    assert len(relation_files) > 800 and on_disk > 900 and len(states) < 30
    assert all(states[d].type == "dir" for d in databases)


def test_the_globs_are_exact_about_depth(initdb_dir):
    watch = _data_watch(initdb_dir)
    assert watch.spec["exclude"] == list(PG_SERVER_WRITTEN)
    matcher = ScanSpec.of_watch(initdb_dir, watch.spec).matcher()
    # fnmatch's `*` matches `/`: the globs themselves, not only the walk, must tell the levels apart.
    assert matcher.wanted("base/16384", True) and matcher.wanted("base", True)
    assert not matcher.wanted("base/16384/2619", False) and not matcher.wanted("base/16384/2619_fsm", False)
    assert not matcher.wanted("base/pgsql_tmp/pgsql_tmp4242.0", False)
    assert matcher.wanted("global", True) and not matcher.wanted("global/pg_control", False)
    assert matcher.wanted("pg_multixact", True) and not matcher.wanted("pg_multixact/members", True)
    assert matcher.wanted("postgresql.conf", False) and matcher.wanted("PG_VERSION", False)
    # What an event on a path is judged by: a file under an excluded directory is left out too.
    assert matcher.reached("base/16384", True)
    assert not matcher.reached("base/16384/2619", False) and not matcher.reached("base/16384/2619_fsm", False)
    assert not matcher.reached("pg_wal/000000010000000000000001", False)
    assert not matcher.reached("pg_logical/snapshots/0-16B2D80.snap", False)
    assert matcher.reached("postgresql.conf", False) and matcher.reached("log", True)


def test_relation_files_written_are_not_read_but_a_database_directory_s_mode_is(initdb_dir):
    data = initdb_dir
    spec = ScanSpec.of_watch(data, _data_watch(data).spec)
    before = scan(spec).states
    first = _databases(data)[0]
    relation = f"{first}/{sorted(os.listdir(first))[0]}"
    with open(relation, "ab") as fh:
        fh.write(b"\0" * 8192)
    with open(f"{first}/99999", "wb") as fh:  # a new relation
        fh.write(b"\0" * 8192)
    os.chmod(first, 0o750)
    try:
        changes = compare(before, scan(spec, before).states)
    finally:
        os.chmod(first, 0o700)
        os.unlink(f"{first}/99999")
    assert [(c.type, c.path) for c in changes] == [("permissions_changed", first)]


def test_a_chmod_of_a_database_directory_is_reported(files_rt, initdb_dir):
    data = initdb_dir
    with files_rt.store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name="local-pg", source="config", external_id="local-pg",
                      labels={}, connection={}, details={}, status="up")
        s.add(asset)
        s.flush()
        asset_id = asset.id
    out = watch_sync.apply_watches(files_rt.store, [_data_watch(data, asset_id)], set())
    (watch_id,) = out["baseline"]
    assert run_scan(files_rt, watch_id, reason="baseline")["read"] < 30
    database = _databases(data)[-1]
    os.chmod(database, 0o755)
    try:
        assert run_scan(files_rt, watch_id, paths=[database], reason="event")["events"] == 1
    finally:
        os.chmod(database, 0o700)
    (event,) = files_rt.events("file.permissions_changed")
    assert event.payload["path"] == database and event.severity == "critical"
