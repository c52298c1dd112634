"""Scans of watches against the real store (both backends): baselines, changes, events, growth."""

from __future__ import annotations

import json
import os
from datetime import timedelta

from sqlalchemy import select

from monitor_app.files import watch_sync
from monitor_app.files.scan_run import run_scan
from monitor_app.store.base import utcnow
from monitor_app.store.models.files import FileEntry, FileWatch
from monitor_app.store.models.metrics import MetricSeries


def _watch(files_rt, path, kinds, **extra) -> int:
    files_rt.write_config({"watch": [{"path": str(path), "kinds": kinds, **extra}]})
    out = watch_sync.sync(files_rt)
    assert len(out["baseline"]) == 1
    watch_id = out["baseline"][0]
    first = run_scan(files_rt, watch_id, reason="baseline")
    assert first["first"] and first["changes"] == 0
    return watch_id


def test_the_first_scan_records_a_baseline_and_reports_nothing(files_rt, tmp_path):
    root = tmp_path / "etc"
    root.mkdir()
    (root / "postgresql.conf").write_text("shared_buffers = 128MB\n")
    watch_id = _watch(files_rt, root, ["config"])
    assert files_rt.events("file.") == []
    with files_rt.store.session() as s:
        watch = s.get(FileWatch, watch_id)
        assert (watch.status, watch.entries, watch.baseline_ready) == ("ok", 2, True)
        entry = s.scalars(select(FileEntry).where(FileEntry.path == str(root / "postgresql.conf"))).one()
        assert entry.state["sha256"] and entry.config["kind"] == "postgresql"


def test_a_config_edit_is_an_event_with_the_parsed_diff_and_never_the_secret(files_rt, tmp_path):
    root = tmp_path / "etc"
    root.mkdir()
    conf = root / "postgresql.conf"
    conf.write_text("shared_buffers = 128MB\nprimary_conninfo = 'host=db1 user=rep password=hunter2-old'\n")
    watch_id = _watch(files_rt, root, ["config"])
    conf.write_text("# tuned\nshared_buffers = 256MB\nprimary_conninfo = 'host=db1 user=rep password=s3cret-new'\n")
    out = run_scan(files_rt, watch_id, reason="rescan")
    assert out["events"] == 1
    (event,) = files_rt.events("file.")
    assert event.type == "file.config_changed"
    diff = {d["parameter"]: d for d in event.payload["diff"]}
    assert (diff["shared_buffers"]["old"], diff["shared_buffers"]["new"]) != (None, None)
    assert diff["shared_buffers"]["restart_required"] is True
    assert "primary_conninfo" in diff
    stored = json.dumps([event.payload, [c.diff for c in files_rt.changes()]])
    assert "hunter2" not in stored and "s3cret" not in stored
    # A retried scan finds the baseline already moved: nothing twice.
    assert run_scan(files_rt, watch_id)["changes"] == 0


def test_a_comment_only_edit_moves_the_baseline_silently(files_rt, tmp_path):
    root = tmp_path / "etc"
    root.mkdir()
    conf = root / "postgresql.conf"
    conf.write_text("work_mem = 4MB\n")
    watch_id = _watch(files_rt, root, ["config"])
    conf.write_text("# a comment\nwork_mem = '4096kB'   # same value\n")
    assert run_scan(files_rt, watch_id)["events"] == 0
    assert files_rt.events("file.") == [] and files_rt.changes() == []


def test_a_data_directory_opened_to_others_is_critical_while_writes_are_silent(files_rt, tmp_path):
    data = tmp_path / "pgdata"
    (data / "base").mkdir(parents=True)
    os.chmod(data, 0o700)
    watch_id = _watch(files_rt, data, ["data"])
    (data / "base" / "16384").write_bytes(b"x" * 8192)
    (data / "base" / "16385").write_bytes(b"y" * 100)
    assert run_scan(files_rt, watch_id)["events"] == 0
    os.chmod(data, 0o755)
    run_scan(files_rt, watch_id, now=utcnow() + timedelta(seconds=11))  # growth is sampled every 10 s at most
    (event,) = files_rt.events("file.")
    assert (event.type, event.severity) == ("file.permissions_changed", "critical")
    assert "0700 -> 0755" in event.summary
    with files_rt.store.session() as s:
        watch = s.get(FileWatch, watch_id)
        assert watch.total_bytes == 8292 and watch.entries == 4
        series = {m.name: m.last_value for m in s.scalars(select(MetricSeries).where(MetricSeries.name.like("file.%")))}
    assert series["file.bytes"] == 8292 and series["file.entries"] == 4


def test_a_burst_is_one_event_but_every_change_is_stored(files_rt, tmp_path):
    root = tmp_path / "drop"
    root.mkdir()
    watch_id = _watch(files_rt, root, ["log"])
    for i in range(150):
        (root / f"app-{i}.log").write_text("line\n")
    out = run_scan(files_rt, watch_id, reason="overflow")
    assert out["changes"] == 150 and out["events"] == 1
    (event,) = files_rt.events("file.")
    assert event.type == "file.created" and event.payload["count"] == 150 and len(event.payload["paths"]) == 20
    assert {c.reason for c in files_rt.changes()} == {"overflow"} and len(files_rt.changes()) == 150


def test_paths_from_events_are_judged_alone(files_rt, tmp_path):
    root = tmp_path / "logs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "old.log").write_text("x")
    (root / "b.log").write_text("x")
    watch_id = _watch(files_rt, root, ["log"])
    (root / "a" / "old.log").unlink()
    (root / "b.log").unlink()  # not named by the events below: left for another scan
    out = run_scan(files_rt, watch_id, paths=[str(root / "a")], reason="event")
    assert out["changes"] == 1
    assert [(c.type, c.path) for c in files_rt.changes()] == [("deleted", str(root / "a" / "old.log"))]
    run_scan(files_rt, watch_id)
    assert [c.path for c in files_rt.changes()][-1] == str(root / "b.log")


def test_an_event_for_a_removed_directory_reports_its_entries_gone_and_nothing_else(files_rt, tmp_path):
    root = tmp_path / "logs"
    (root / "Old_1").mkdir(parents=True)
    (root / "old_1").mkdir()  # another spelling, and `_` is a LIKE wildcard: neither may leak in
    (root / "Old_1" / "a.log").write_text("x")
    (root / "old_1" / "b.log").write_text("x")
    watch_id = _watch(files_rt, root, ["log"])
    (root / "Old_1" / "a.log").unlink()
    (root / "Old_1").rmdir()
    out = run_scan(files_rt, watch_id, paths=[str(root / "Old_1")], reason="event")
    assert out["changes"] == 2
    assert sorted((c.type, c.path) for c in files_rt.changes()) == [
        ("deleted", str(root / "Old_1")), ("deleted", str(root / "Old_1" / "a.log"))]


def test_a_path_that_goes_away_is_reported_once_and_what_changed_meanwhile_is_found(files_rt, tmp_path):
    root = tmp_path / "conf"
    root.mkdir()
    (root / "redis.conf").write_text("maxmemory 1gb\n")
    watch_id = _watch(files_rt, root, ["config"])
    os.rename(root, tmp_path / "away")
    assert "unavailable" in run_scan(files_rt, watch_id)
    assert "unavailable" in run_scan(files_rt, watch_id)
    assert [e.type for e in files_rt.events("file.")] == ["file.watch_unavailable"]
    (tmp_path / "away" / "redis.conf").write_text("maxmemory 2gb\nprotected-mode no\n")
    os.rename(tmp_path / "away", root)
    run_scan(files_rt, watch_id)
    types = [e.type for e in files_rt.events("file.")]
    assert types == ["file.watch_unavailable", "file.watch_recovered", "file.config_changed"]
    diff = files_rt.events("file.config_changed")[0].payload["diff"]
    assert {d["parameter"] for d in diff} == {"maxmemory", "protected-mode"}
    assert files_rt.events("file.config_changed")[0].severity == "critical"


def test_watches_follow_the_config_file(files_rt, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    files_rt.write_config({"watch": [{"path": str(a), "kinds": ["config"]}, {"path": str(b), "kinds": ["log"]}]})
    first = watch_sync.sync(files_rt)
    assert len(first["baseline"]) == 2 and first["removed"] == []
    assert watch_sync.sync(files_rt)["baseline"] == []  # nothing changed, nothing to redo
    files_rt.write_config({"watch": [{"path": str(a), "kinds": ["config"], "exclude": ["*.bak"]}]})
    second = watch_sync.sync(files_rt)
    assert len(second["baseline"]) == 1 and len(second["removed"]) == 1
    with files_rt.store.session() as s:
        statuses = {w.path: w.status for w in s.scalars(select(FileWatch))}
    assert statuses == {str(a): "pending", str(b): "removed"}
