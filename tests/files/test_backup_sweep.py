"""Backups followed through scans and the sweep: settled, judged, shrunk, missing once per gap;
and what the prune job drops."""

from __future__ import annotations

import gzip
from datetime import timedelta

from sqlalchemy import select

from monitor_app.files import runs, watch_sync
from monitor_app.files.scan_run import run_scan
from monitor_app.store.base import utcnow
from monitor_app.store.models.files import FileBackup, FileChange, FileWatch

DUMP = "--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (id int);\n" + "INSERT INTO t VALUES (1);\n" * 2000 \
    + "--\n-- PostgreSQL database dump complete\n--\n"


def _backup_watch(files_rt, root, **policy) -> int:
    files_rt.write_config({"watch": [{"path": str(root), "kinds": ["backup"],
                                      "backup": {"settle": "60s", "max_age": "1h", **policy}}]})
    (watch_id,) = watch_sync.sync(files_rt)["baseline"]
    run_scan(files_rt, watch_id, reason="baseline")
    return watch_id


def _backups(files_rt) -> dict[str, FileBackup]:
    with files_rt.store.session() as s:
        rows = s.scalars(select(FileBackup)).all()
        s.expunge_all()
    return {r.path.rsplit("/", 1)[1]: r for r in rows}


def test_a_backup_is_judged_once_it_settles_and_a_smaller_one_is_shrunk(files_rt, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    with gzip.open(root / "monday.sql.gz", "wt") as fh:
        fh.write(DUMP)
    watch_id = _backup_watch(files_rt, root)
    assert _backups(files_rt)["monday.sql.gz"].state == "completed"  # there before watching: history, not news
    assert files_rt.events("backup.") == []

    t0 = utcnow()
    with gzip.open(root / "tuesday.sql.gz", "wt") as fh:
        fh.write(DUMP)
    run_scan(files_rt, watch_id, [str(root / "tuesday.sql.gz")], reason="event", now=t0)
    assert _backups(files_rt)["tuesday.sql.gz"].state == "in_progress"
    assert runs.backup_sweep(files_rt, now=t0 + timedelta(seconds=30))["settled"] == 0
    assert runs.backup_sweep(files_rt, now=t0 + timedelta(seconds=61))["settled"] == 1
    tuesday = _backups(files_rt)["tuesday.sql.gz"]
    assert (tuesday.state, tuesday.format) == ("completed", "sql.gz")
    assert [e.type for e in files_rt.events("backup.")] == ["backup.completed"]

    with gzip.open(root / "wednesday.sql.gz", "wt") as fh:
        fh.write(DUMP[:200] + "--\n-- PostgreSQL database dump complete\n--\n")
    t1 = t0 + timedelta(minutes=5)
    run_scan(files_rt, watch_id, reason="rescan", now=t1)
    runs.backup_sweep(files_rt, now=t1 + timedelta(seconds=61))
    assert [e.type for e in files_rt.events("backup.")][1:] == ["backup.completed", "backup.shrunk"]


def test_a_truncated_dump_is_corrupt(files_rt, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    watch_id = _backup_watch(files_rt, root, settle="1s")
    (root / "nightly.sql").write_text(DUMP[: len(DUMP) // 2])  # the job died half-way
    t0 = utcnow()
    run_scan(files_rt, watch_id, reason="rescan", now=t0)
    runs.backup_sweep(files_rt, now=t0 + timedelta(seconds=2))
    assert _backups(files_rt)["nightly.sql"].state == "corrupt"
    corrupt = files_rt.events("backup.corrupt")
    assert len(corrupt) == 1 and corrupt[0].severity == "critical"


def test_no_backup_within_max_age_is_missing_once_per_gap(files_rt, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    _backup_watch(files_rt, root, settle="1s")
    later = utcnow() + timedelta(hours=2)
    assert runs.backup_sweep(files_rt, now=later)["missing"] == 1
    assert runs.backup_sweep(files_rt, now=later + timedelta(minutes=1))["missing"] == 0
    (missing,) = files_rt.events("backup.missing")
    assert missing.severity == "critical" and missing.payload["max_age"] == 3600
    (root / "late.sql").write_text(DUMP)
    run_scan(files_rt, (missing.payload["watch_id"]), reason="rescan", now=later)
    runs.backup_sweep(files_rt, now=later + timedelta(seconds=2))
    assert runs.backup_sweep(files_rt, now=later + timedelta(minutes=59))["missing"] == 0
    assert runs.backup_sweep(files_rt, now=later + timedelta(hours=3))["missing"] == 1  # a new gap


def test_the_prune_job_drops_old_changes_and_long_removed_watches(files_rt, tmp_path):
    root = tmp_path / "logs"
    root.mkdir()
    files_rt.write_config({"watch": [{"path": str(root), "kinds": ["log"]}]})
    (watch_id,) = watch_sync.sync(files_rt)["baseline"]
    run_scan(files_rt, watch_id)
    (root / "a.log").write_text("x")
    run_scan(files_rt, watch_id)
    files_rt.write_config({})
    watch_sync.sync(files_rt)
    now = utcnow()
    with files_rt.store.session() as s:
        assert runs.prune(s, now, timedelta(days=90)) == {"file_changes": 0, "file_watches": 0}
        assert runs.prune(s, now + timedelta(days=91), timedelta(days=90)) == {"file_changes": 1, "file_watches": 1}
        assert s.scalars(select(FileChange)).all() == [] and s.scalars(select(FileWatch)).all() == []


def test_an_sqlite_asset_s_files_are_watched_without_a_watch_entry(files_rt, tmp_path):
    import sqlite3

    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    files_rt.write_config({"assets": [{"name": "app", "engine": "sqlite", "path": str(db)}]})
    from monitor_app.assets.config_assets import sync_config_assets

    with files_rt.store.session() as s:
        sync_config_assets(s, files_rt.config, files_rt.credentials)
    (watch_id,) = watch_sync.sync(files_rt)["baseline"]
    run_scan(files_rt, watch_id)
    with files_rt.store.session() as s:
        watch = s.get(FileWatch, watch_id)
        assert watch.path == str(tmp_path) and watch.kinds == ["data"]
        assert sorted(watch.spec["include"]) == ["app.db", "app.db-journal", "app.db-wal"]
        before = watch.total_bytes
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 200)
    conn.commit()
    run_scan(files_rt, watch_id, [str(db) + "-wal"], reason="event")
    with files_rt.store.session() as s:
        assert s.get(FileWatch, watch_id).total_bytes > before + 200_000
    conn.close()


def test_a_deleted_backup_is_marked_and_no_longer_counts_as_a_recent_one(files_rt, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    (root / "only.sql").write_text(DUMP)
    watch_id = _backup_watch(files_rt, root)
    now = utcnow()
    assert runs.backup_sweep(files_rt, now=now)["missing"] == 0
    (root / "only.sql").unlink()
    run_scan(files_rt, watch_id, [str(root / "only.sql")], reason="event", now=now)
    assert _backups(files_rt)["only.sql"].state == "deleted"
    assert runs.backup_sweep(files_rt, now=now + timedelta(minutes=61))["missing"] == 1
