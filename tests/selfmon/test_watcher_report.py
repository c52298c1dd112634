"""The watcher's rows (its own, and one per source while it leads) and its stand-in for a dead beat."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import select

from monitor_app.selfmon.watcher_report import WatcherReporter
from monitor_app.store.base import utcnow
from monitor_app.store.models.selfmon import ComponentHeartbeat
from tests.selfmon.conftest import beat

HOST = socket.gethostname()


class Ticks:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Source:
    def __init__(self, alive: bool):
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive


class FakeWatcher:
    """What the reporter reads of workers.watcher.Watcher."""

    def __init__(self, rt, sources: dict):
        self.leading = threading.Event()
        self.leading.set()
        self.sources = sources
        self.lease = SimpleNamespace(holder=f"{HOST}:1:abcd")
        self.emitted: list[str] = []
        self._rt = rt

    def emit(self, task_name: str, kwargs: dict) -> str:
        self.emitted.append(task_name)
        return self._rt.dispatch(task_name, kwargs, requested_by="watcher")


def rows(store) -> dict[str, ComponentHeartbeat]:
    with store.session() as s:
        return {r.instance: r for r in s.scalars(select(ComponentHeartbeat))}


def test_a_leader_writes_its_sources_and_a_standby_only_itself(store, rt):
    ticks = Ticks()
    reporter = WatcherReporter(rt, clock=ticks)
    watcher = FakeWatcher(rt, {"config": Source(True), "docker": Source(False), "files": object()})
    reporter.report(watcher)
    found = rows(store)
    me = f"watcher@{HOST}"
    assert found[me].detail == {"leading": True, "holder": f"{HOST}:1:abcd", "sources": ["config", "docker", "files"]}
    assert {i: r.detail["alive"] for i, r in found.items() if r.kind == "watch_source"} == {
        f"{me}/config": True, f"{me}/docker": False, f"{me}/files": True}

    watcher.leading.clear()
    watcher.sources = {}
    reporter.report(watcher)  # within the interval: nothing written
    assert rows(store)[me].detail["leading"] is True
    ticks.t = rt.settings.selfmon_heartbeat_interval
    reporter.report(watcher)
    assert rows(store)[me].detail == {"leading": False, "holder": f"{HOST}:1:abcd", "sources": []}


def test_the_leader_sends_the_self_check_while_beat_is_dead_but_never_piles_them_up(store, rt):
    ticks = Ticks()
    reporter = WatcherReporter(rt, clock=ticks)
    watcher = FakeWatcher(rt, {})
    ticks.t = rt.settings.selfmon_check_interval
    reporter.report(watcher)
    assert watcher.emitted == []  # beat never reported: nothing to stand in for

    beat(store, "beat", "beat@a", utcnow() - timedelta(seconds=5))
    ticks.t *= 2
    reporter.report(watcher)
    assert watcher.emitted == []  # beat alive

    beat(store, "beat", "beat@a", utcnow() - timedelta(seconds=120))
    for step in (3, 4):
        ticks.t = rt.settings.selfmon_check_interval * step
        reporter.report(watcher)
    assert watcher.emitted == ["selfmon.check"]  # the second pass saw the first check still queued
    assert [s[0] for s in rt.sent] == ["selfmon.check"]
