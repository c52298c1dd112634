"""Hostile trees: a 10 GB file, garbage in a config file, a directory dbmon may not read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor_app.files import watch_sync
from monitor_app.files.compare import compare
from monitor_app.files.scan_run import _scope, run_scan
from monitor_app.files.tree_scan import ScanResult, ScanSpec, scan
from monitor_app.store.models.files import FileBackup, FileEntry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_10_gb_backup_is_stat_ed_not_read(files_rt, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    files_rt.write_config({"watch": [{"path": str(root), "kinds": ["backup"], "backup": {"settle": 0}}]})
    (watch_id,) = watch_sync.sync(files_rt)["baseline"]
    run_scan(files_rt, watch_id)
    with open(root / "huge.dump", "wb") as fh:
        fh.truncate(10 << 30)  # sparse: 10 GiB that takes no disk
    started = time.monotonic()
    run_scan(files_rt, watch_id)
    assert time.monotonic() - started < 5
    with files_rt.store.session() as s:
        entry = s.scalars(select(FileEntry).where(FileEntry.path == str(root / "huge.dump"))).one()
        backup = s.scalars(select(FileBackup)).one()
    assert entry.state["size"] == 10 << 30 and "sha256" not in entry.state
    assert backup.state == "completed" and backup.format == "unknown"


def test_a_config_file_of_garbage_is_a_parse_error_not_a_crash(files_rt, tmp_path):
    root = tmp_path / "etc"
    root.mkdir()
    conf = root / "postgresql.conf"
    conf.write_text("max_connections = 100\n")
    files_rt.write_config({"watch": [{"path": str(root), "kinds": ["config"]}]})
    (watch_id,) = watch_sync.sync(files_rt)["baseline"]
    run_scan(files_rt, watch_id)
    conf.write_bytes(b"max_connections = 200\n\xff\xfe = = '\nshared_buffers 'unterminated\n" + os.urandom(2000).replace(b"\0", b"x"))
    out = run_scan(files_rt, watch_id)
    assert out["changes"] == 1
    (event,) = files_rt.events("file.config_changed")
    assert [d["parameter"] for d in event.payload["diff"]][0] == "max_connections"
    with files_rt.store.session() as s:
        parsed = s.scalars(select(FileEntry.config).where(FileEntry.path == str(conf))).one()
    assert parsed["errors"] and json.dumps(parsed)


def test_an_unreadable_directory_is_reported_and_its_entries_are_not_taken_for_deleted(tmp_path):
    old = {f"{tmp_path}/locked": None, f"{tmp_path}/locked/a": None, f"{tmp_path}/b": None}
    result = ScanResult(states={}, errors={f"{tmp_path}/locked": "Permission denied"})
    scope = _scope(None, old, result)
    assert f"{tmp_path}/locked/a" not in scope and f"{tmp_path}/b" in scope


@pytest.mark.slow
def test_a_scan_as_an_unprivileged_user_lists_what_it_cannot_read():
    # Outside pytest's tmp_path, whose parents only root may enter.
    top = Path(tempfile.mkdtemp(prefix="dbmon-files-"))
    try:
        _scan_as_nobody(top)
    finally:
        shutil.rmtree(top)


def _scan_as_nobody(top: Path) -> None:
    tree = top / "tree"
    (tree / "locked").mkdir(parents=True)
    (tree / "locked" / "secret").write_text("x")
    (tree / "open.txt").write_text("x")
    os.chmod(tree / "locked", 0o700)
    for path in (top, tree, tree / "open.txt"):
        os.chmod(path, os.stat(path).st_mode | 0o005)
    code = ("import json,sys; from monitor_app.files.tree_scan import ScanSpec, scan; "
            "r = scan(ScanSpec(sys.argv[1], hash_content=True)); "
            "print(json.dumps({'states': sorted(r.states), 'errors': r.errors}))")
    # The system interpreter: the scan needs the standard library only, and the project's may sit
    # under a home directory the unprivileged user cannot enter.
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    done = subprocess.run([shutil.which("runuser") or "/usr/sbin/runuser", "-u", "nobody", "--", python, "-c", code,
                           str(tree)], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PYTHONPATH": ROOT, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["errors"] == {str(tree / "locked"): "Permission denied"}
    assert str(tree / "open.txt") in out["states"] and str(tree / "locked" / "secret") not in out["states"]
    full = scan(ScanSpec(str(tree)))  # as root, with the baseline it would have
    gone = compare(full.states, {k: full.states[k] for k in out["states"]},
                   _scope(None, full.states, ScanResult(errors=out["errors"], states={k: full.states[k] for k in out["states"]})))
    assert gone == []
