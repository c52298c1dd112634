"""The watcher's file source on real inotify: events coalesced into scans, and a full rescan
whenever inotify may have missed something (start, overflow, a path that became watchable)."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from monitor_app.config.settings import load_settings
from monitor_app.files.watch_targets import for_postgresql
from monitor_app.platform.runtime import Runtime
from monitor_app.store.models.files import FileWatch
from tests.harness import wait_for
from workers.watch_sources.file_changes import MAX_PATHS, OVERFLOW_LOGGER, FileChangesSource


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
    (data / "postgresql.conf").write_text("port = 5433\n")
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
