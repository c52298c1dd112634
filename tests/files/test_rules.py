"""The built-in rules of the file concern against the real events scans record: what pages, and
what routine file changes do not."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import select

from monitor_app.alerting.config import load_alerting_config
from monitor_app.alerting.operations import AlertOperations
from monitor_app.files import runs, watch_sync
from monitor_app.files.scan_run import run_scan
from monitor_app.store.base import utcnow
from monitor_app.store.models import Event
from monitor_app.store.models.alerting import Alert


def _evaluate(files_rt) -> dict[str, str]:
    with files_rt.store.session() as s:
        ids = list(s.scalars(select(Event.id).order_by(Event.id)))
    AlertOperations(files_rt.store, load_alerting_config({}), "test-secret-key").evaluate_events(ids)
    with files_rt.store.session() as s:
        return {a.rule: a.state for a in s.scalars(select(Alert))}


def _watch(files_rt, entries: list[dict]) -> list[int]:
    files_rt.write_config({"watch": entries})
    ids = watch_sync.sync(files_rt)["baseline"]
    for watch_id in ids:
        run_scan(files_rt, watch_id)
    return ids


def test_opened_permissions_and_risky_config_page_and_routine_changes_do_not(files_rt, tmp_path):
    data, etc = tmp_path / "pgdata", tmp_path / "etc"
    data.mkdir(mode=0o700)
    etc.mkdir()
    hba = etc / "pg_hba.conf"
    hba.write_text("local all all peer\n")
    (etc / "postgresql.conf").write_text("work_mem = 4MB\n")
    data_id, etc_id = _watch(files_rt, [{"path": str(data), "kinds": ["data"]}, {"path": str(etc), "kinds": ["config"]}])
    (data / "16384").write_bytes(b"x" * 100)
    (etc / "postgresql.conf").write_text("work_mem = 8MB\n")
    os.chown(data, 0, 1)  # owner change, nothing opened: a warning, no page
    run_scan(files_rt, data_id)
    run_scan(files_rt, etc_id)
    assert _evaluate(files_rt) == {}
    os.chmod(data, 0o750)
    hba.write_text("local all all peer\nhost all all 0.0.0.0/0 trust\n")
    run_scan(files_rt, data_id)
    run_scan(files_rt, etc_id)
    assert _evaluate(files_rt) == {"FilePermissionsOpened": "firing", "RiskyConfigChange": "firing"}


def test_a_missing_backup_pages_until_one_completes_and_a_corrupt_one_pages(files_rt, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    (watch_id,) = _watch(files_rt, [{"path": str(root), "kinds": ["backup"],
                                     "backup": {"max_age": "1h", "settle": "1s"}}])
    later = utcnow() + timedelta(hours=2)
    runs.backup_sweep(files_rt, now=later)
    assert _evaluate(files_rt) == {"BackupMissing": "firing"}
    (root / "ok.sql").write_text("--\n-- PostgreSQL database dump\n--\nSELECT 1;\n-- PostgreSQL database dump complete\n")
    (root / "broken.sql").write_text("--\n-- PostgreSQL database dump\n--\nCOPY t FROM stdin;\n1\n")
    run_scan(files_rt, watch_id, now=later)
    runs.backup_sweep(files_rt, now=later + timedelta(seconds=2))
    assert _evaluate(files_rt) == {"BackupMissing": "resolved", "BackupCorrupt": "firing"}
