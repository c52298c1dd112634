"""The watcher's file source on real inotify: events coalesced into scans, and a full rescan
whenever inotify may have missed something (start, overflow, a path that became watchable)."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from monitor_app.config.settings import load_settings
from monitor_app.platform.runtime import Runtime
from monitor_app.store.models.files import FileWatch
from tests.harness import wait_for
from workers.watch_sources.file_changes import OVERFLOW_LOGGER, FileChangesSource


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
