"""The watcher's file source on real inotify: events coalesced into scans, and a full rescan
whenever inotify may have missed something (start, overflow, a path that became watchable)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

import pytest

from monitor_app.config.settings import load_settings
from monitor_app.files.watch_targets import for_postgresql, for_sqlite
from monitor_app.platform.runtime import Runtime
from monitor_app.store.models import Asset
from monitor_app.store.models.files import FileWatch
from tests.harness import wait_for
from workers.watch_sources.file_changes import MAX_PATHS, OVERFLOW_LOGGER, FileChangesSource
from workers.watch_sources.sqlite_schema import SqliteSchemaSource


class Emitted:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def __call__(self, task, kwargs):
        with self.lock:
            self.calls.append((task, kwargs))
        return "run"

    def take(self) -> list[dict]:
        with self.lock:
            out, self.calls = [k for _, k in self.calls], []
        return out


@pytest.fixture()
def source_for(sqlite_store, tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=sqlite_store.url, secret_key="k",
                             config_file=tmp_path / "none.yaml")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = sqlite_store
    started = []

    def make(*watches: tuple[str, dict, bool]) -> tuple[FileChangesSource, Emitted, list[int]]:
        ids = []
        with sqlite_store.session() as s:
            for i, (path, spec, ready) in enumerate(watches):
                row = FileWatch(key=f"k{i}", path=path, source="config", kinds=["config"], spec=spec, status="ok",
                                errors={}, baseline_ready=ready, pending_restart=[])
                s.add(row)
                s.flush()
                ids.append(row.id)
        emitted = Emitted()
        source = FileChangesSource(rt, emitted)
        source.start()
        started.append(source)
        return source, emitted, ids

    yield make
    for source in started:
        source.stop()


ALL = {"recursive": True, "events": ["created", "modified", "deleted", "moved", "permissions"]}


def test_a_started_source_rescans_what_it_watched_before_and_pushes_writes_as_paths(source_for, tmp_path):
    watched = tmp_path / "w"
    watched.mkdir()
    source, emitted, (watch_id,) = source_for((str(watched), ALL, True))
    wait_for(lambda: emitted.calls, timeout=5, what="the start-up rescan")
    assert emitted.take() == [{"watch_id": watch_id, "reason": "start"}]
    (watched / "sub").mkdir()
    time.sleep(0.3)
    emitted.take()
    (watched / "sub" / "a.conf").write_text("x = 1\n")
    started = time.monotonic()
    wait_for(lambda: any(str(watched / "sub" / "a.conf") in k.get("paths", []) for _, k in emitted.calls), timeout=5,
             what="the write pushed")
    assert time.monotonic() - started < 1.0
    assert all(c["reason"] == "event" and c["watch_id"] == watch_id for c in emitted.take())


def test_an_overflow_turns_into_a_full_rescan(source_for, tmp_path):
    source, emitted, (watch_id,) = source_for((str(tmp_path), ALL, False))  # no start-up rescan to wait out
    time.sleep(0.3)
    logging.getLogger(OVERFLOW_LOGGER).warning("Inotify queue overflowed; filesystem events were lost")
    wait_for(lambda: emitted.calls, timeout=5, what="the rescan")
    assert emitted.take() == [{"watch_id": watch_id, "reason": "overflow"}]
    assert source.overflows == 1


def test_a_burst_is_covered_by_named_paths_or_a_full_rescan_and_never_exceeds_the_batch(source_for, tmp_path):
    source, emitted, (watch_id,) = source_for((str(tmp_path), ALL, False))
    names = {str(tmp_path / f"f{i}") for i in range(2000)}
    for name in names:
        with open(name, "w") as fh:
            fh.write("x")
    time.sleep(1.0)
    calls = emitted.take()
    named = {p for c in calls for p in c.get("paths", [])}
    assert {"watch_id": watch_id, "reason": "burst"} in calls or names <= named
    assert max(len(c.get("paths", [])) for c in calls) <= 500


def test_a_single_file_is_watched_through_its_directory(source_for, tmp_path):
    target = tmp_path / "postgresql.conf"
    target.write_text("a = 1\n")
    (tmp_path / "other").write_text("")
    source, emitted, (watch_id,) = source_for((str(target), {"recursive": False, "events": ["modified"]}, False))
    (tmp_path / "other").write_text("ignored")
    time.sleep(0.4)
    assert emitted.take() == []
    tmp = tmp_path / "postgresql.conf.tmp"
    tmp.write_text("a = 2\n")
    os.replace(tmp, target)  # how editors save
    wait_for(lambda: emitted.calls, timeout=5, what="the replace pushed")
    assert any(str(target) in c.get("paths", []) for c in emitted.take())


def test_a_path_that_appears_later_is_watched_and_rescanned(source_for, tmp_path):
    later = tmp_path / "later"
    source, emitted, (watch_id,) = source_for((str(later), ALL, True))
    time.sleep(0.3)
    assert emitted.take() == []  # nothing to watch yet
    later.mkdir()
    source.refresh()
    wait_for(lambda: emitted.calls, timeout=5, what="the rescan of the new path")
    assert emitted.take() == [{"watch_id": watch_id, "reason": "appeared"}]


def test_a_name_that_is_not_utf8_is_sent_as_its_directory(source_for, tmp_path):
    source, emitted, (watch_id,) = source_for((str(tmp_path), ALL, False))
    with open(os.path.join(os.fsencode(tmp_path), b"bad-\xff"), "wb") as fh:
        fh.write(b"x")
    wait_for(lambda: emitted.calls, timeout=5, what="the write pushed")
    paths = [p for c in emitted.take() for p in c.get("paths", [])]
    assert str(tmp_path) in paths
    assert all(p.encode("utf-8") for p in paths)


def test_full_rescans_of_one_watch_are_spaced_and_the_last_one_is_still_sent(source_for, tmp_path):
    source, emitted, (watch_id,) = source_for((str(tmp_path), ALL, True))
    wait_for(lambda: emitted.calls, timeout=5, what="the start-up rescan")
    started = time.monotonic()
    assert emitted.take() == [{"watch_id": watch_id, "reason": "start"}]
    for _ in range(3):  # three more bursts at once: one rescan covers them, after the spacing
        logging.getLogger(OVERFLOW_LOGGER).warning("Inotify queue overflowed")
    time.sleep(1.0)
    assert emitted.take() == []
    wait_for(lambda: emitted.calls, timeout=10, what="the spaced rescan")
    assert time.monotonic() - started >= 4.5
    assert emitted.take() == [{"watch_id": watch_id, "reason": "overflow"}]


def test_a_storm_of_writes_the_watch_leaves_out_queues_nothing_and_a_kept_change_still_does(source_for, tmp_path):
    data = tmp_path / "data"
    for directory in ("base/16384", "global", "pg_wal", "pg_xact"):
        (data / directory).mkdir(parents=True)
    (data / "postgresql.conf").write_text("port = 5432\n")
    (spec,) = [w.spec for w in for_postgresql(1, {"data_directory": str(data)}) if w.kinds == ("data",)]
    source, emitted, (watch_id,) = source_for((str(data), spec, False))
    time.sleep(0.3)
    relations = [data / "base" / "16384" / f"{oid}{fork}" for oid in range(2600, 2600 + MAX_PATHS)
                 for fork in ("", "_fsm")]
    others = [data / "global" / "pg_control", data / "pg_xact" / "0000", data / "pg_wal" / "000000010000000000000001"]
    for path in relations + others:
        with open(path, "wb") as fh:
            fh.write(b"\0" * 8192)
    (data / "base" / "16384" / "pgsql_tmp").mkdir()  # a directory under a left-out one, and a file in it
    (data / "base" / "16384" / "pgsql_tmp" / "pgsql_tmp42.0").write_bytes(b"sort")
    wait_for(lambda: source.paths_left_out >= len(relations) + len(others) + 2, timeout=10,
             what="the storm's events received")
    time.sleep(1.3)  # past the data watch's one-second gathering
    assert emitted.take() == [] and source.flush(everything=True) == 0  # no paths, no burst, no full rescan

    os.chmod(data / "base" / "16384", 0o750)
    os.chmod(data / "postgresql.conf", 0o640)  # its content is the config watch's: a data watch is not sent writes
    kept = {str(data / "base" / "16384"), str(data / "postgresql.conf")}
    wait_for(lambda: kept <= {p for _, k in emitted.calls for p in k.get("paths", [])}, timeout=5,
             what="the kept changes pushed")
    calls = emitted.take()
    assert all(c["reason"] == "event" and c["watch_id"] == watch_id for c in calls)
    assert {p for c in calls for p in c["paths"]} == kept


def test_include_globs_leave_out_other_files_but_never_a_directory_s_own_event(source_for, tmp_path):
    (tmp_path / "sub").mkdir()
    source, emitted, (watch_id,) = source_for((str(tmp_path), {**ALL, "include": ["*.conf"]}, False))
    time.sleep(0.3)
    (tmp_path / "sub" / "x.log").write_text("x")
    os.chmod(tmp_path / "sub", 0o700)  # a scan walks every directory, whatever the include globs say
    (tmp_path / "sub" / "a.conf").write_text("x")
    wait_for(lambda: str(tmp_path / "sub" / "a.conf") in {p for _, k in emitted.calls for p in k.get("paths", [])},
             timeout=5, what="the .conf write pushed")
    time.sleep(0.3)
    paths = {p for c in emitted.take() for p in c.get("paths", [])}
    assert paths == {str(tmp_path / "sub"), str(tmp_path / "sub" / "a.conf")}
    assert source.paths_left_out >= 1


def test_a_watch_whose_globs_change_is_judged_by_the_new_ones(source_for, sqlite_store, tmp_path):
    source, emitted, (watch_id,) = source_for((str(tmp_path), ALL, False))
    with sqlite_store.session() as s:
        s.get(FileWatch, watch_id).spec = {**ALL, "exclude": ["*.tmp"]}
    source.refresh()
    (tmp_path / "x.tmp").write_text("x")
    (tmp_path / "x.conf").write_text("x")
    wait_for(lambda: emitted.calls, timeout=5, what="the write pushed")
    time.sleep(0.3)
    assert {p for c in emitted.take() for p in c.get("paths", [])} == {str(tmp_path / "x.conf")}


QUIET = {"recursive": True, "events": ["permissions"]}


def _named(emitted: Emitted) -> set[str]:
    with emitted.lock:
        return {p for _, k in emitted.calls for p in k.get("paths", [])}


def test_a_watch_that_reports_no_content_is_sent_no_writes_but_still_attributes_creates_and_deletes(
        source_for, tmp_path):
    (tmp_path / "sub").mkdir()
    kept = tmp_path / "sub" / "000000010000000000000001"
    kept.write_bytes(b"\0" * 8192)
    source, emitted, (watch_id,) = source_for((str(tmp_path), QUIET, False))
    time.sleep(0.3)
    for _ in range(200):  # a busy server: appends and in-place writes to a file the watch keeps
        with open(kept, "ab") as fh:
            fh.write(b"x" * 512)
        with open(kept, "r+b") as fh:
            fh.write(b"y")
    time.sleep(1.3)  # past the quiet watch's one-second gathering
    assert source.events_received == 0
    assert emitted.take() == []

    os.chmod(kept, 0o600)
    wait_for(lambda: str(kept) in _named(emitted), timeout=5, what="the chmod pushed")
    new = tmp_path / "sub" / "000000010000000000000002"
    new.write_bytes(b"\0")
    wait_for(lambda: str(new) in _named(emitted), timeout=5, what="the create pushed")
    emitted.take()
    kept.unlink()
    wait_for(lambda: str(kept) in _named(emitted), timeout=5, what="the delete pushed")
    assert all(c["watch_id"] == watch_id and c["reason"] == "event" for c in emitted.take())


def test_a_config_watch_of_a_directory_a_quiet_watch_also_watches_still_gets_its_writes(source_for, tmp_path):
    # The derived watches of one data directory: its config files through the directory, then the
    # quiet data watch of the same directory. One inotify instance keeps one mask per directory, so
    # the data watch's would take the writes away from the config watch if they shared one.
    conf = tmp_path / "postgresql.conf"
    conf.write_text("port = 5432\n")
    watches = for_postgresql(1, {"data_directory": str(tmp_path), "config_file": str(conf)})
    (config_spec,) = [w.spec for w in watches if w.kinds == ("config",)]
    (data_spec,) = [w.spec for w in watches if w.kinds == ("data",)]
    source, emitted, (config_id, data_id) = source_for((str(tmp_path), config_spec, False),
                                                       (str(tmp_path), data_spec, False))
    time.sleep(0.3)
    with open(conf, "r+") as fh:  # in place: no create, rename or truncation, only writes
        fh.write("port = 5433\n")
    wait_for(lambda: any(c["watch_id"] == config_id and str(conf) in c.get("paths", []) for _, c in emitted.calls),
             timeout=5, what="the config write pushed to the config watch")


def test_a_sqlite_schema_change_is_still_found_while_a_quiet_watch_covers_its_file(source_for, tmp_path):
    path = tmp_path / "app" / "app.db"  # not beside the store, whose own writes would be events here
    path.parent.mkdir()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    (watch,) = for_sqlite(1, str(path))
    source, emitted, _ = source_for((watch.path, watch.spec, False))
    writes: list[str] = []  # file writes the file source was sent
    dispatch = source.on_any_event

    def recording(event) -> None:
        if event.event_type in ("modified", "closed") and not event.is_directory:
            writes.append(event.src_path)
        dispatch(event)

    source.on_any_event = recording  # type: ignore[method-assign]
    with source.runtime.store.session() as s:
        s.add(Asset(kind="database", engine="sqlite", name="app", source="config", external_id="app", labels={},
                    connection={"path": str(path)}, details={}, status="up"))
    checks = Emitted()
    schema = SqliteSchemaSource(source.runtime, checks)
    schema.start()
    try:
        time.sleep(0.3)
        for i in range(20):
            db.execute(f"INSERT INTO t VALUES ({i})")
        db.execute("ALTER TABLE t ADD COLUMN name TEXT")
        wait_for(lambda: checks.calls, timeout=5, what="the schema check")
    finally:
        schema.stop()
        db.close()
    assert [task for task, _ in checks.calls] == ["schema.check"]
    assert writes == []  # they went to the schema source's own inotify instance only
