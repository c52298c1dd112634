"""Heartbeat rows: upserted by (kind, instance), judged dead after three intervals or a clean
stop, forgotten after a day, bounded in what they keep; the writer throttles and never raises."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from monitor_app.selfmon.components import Heartbeat, components, forget, record
from monitor_app.selfmon.reporters import HeartbeatWriter, WorkerHeartbeat
from monitor_app.store.models.selfmon import ComponentHeartbeat
from tests.harness import wait_for
from tests.selfmon.conftest import beat


def rows(store) -> dict[tuple[str, str], object]:
    with store.session() as s:
        return {(r.kind, r.instance): r for r in s.scalars(select(ComponentHeartbeat))}


def test_a_row_is_alive_for_three_intervals_and_upserted_in_place(store, clock):
    beat(store, "worker", "w1@a", clock(), queues=("schema", "alerts"), interval=10)
    beat(store, "worker", "w1@a", clock.advance(5), queues=("schema",), interval=10)
    assert len(rows(store)) == 1
    with store.session() as s:
        (w,) = components(s, clock.advance(29))
        assert w.alive and w.queues == ("schema",) and w.age_seconds == pytest.approx(29)
        (w,) = components(s, clock.advance(2))
        assert not w.alive  # 31 s: more than three intervals of 10 s


def test_a_clean_stop_is_dead_at_once_and_old_rows_are_forgotten(store, clock):
    beat(store, "beat", "beat@a", clock(), detail={"stopped": True})
    beat(store, "worker", "gone@b", clock() - timedelta(days=2))
    with store.session() as s:
        assert {c.instance: c.alive for c in components(s, clock())} == {"beat@a": False, "gone@b": False}
        assert forget(s, clock(), 86400) == 1
    assert list(rows(store)) == [("beat", "beat@a")]


def test_what_a_process_writes_is_bounded_and_kinds_are_checked(store, clock):
    detail = {f"k{i}": "x" * 2000 for i in range(100)} | {"nested": {"a": [1] * 10}}
    record(store, [Heartbeat("worker", "w" * 400, "h", 1, 10, clock(), tuple(f"q{i}" for i in range(100)),
                             detail)], clock())
    (row,) = rows(store).values()
    assert len(row.instance) == 255 and len(row.queues) == 64 and len(row.detail) == 32
    assert max(len(str(v)) for v in row.detail.values()) <= 500
    with pytest.raises(ValueError, match="unknown component kind"):
        record(store, [Heartbeat("cron", "x", "h", 1, 10, clock())], clock())


class Ticks:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_writer_throttles_to_its_interval_and_survives_a_dead_store(store):
    ticks = Ticks()
    writer = HeartbeatWriter(lambda: store, "watcher", "watcher@a", 10, clock=ticks)
    assert writer.write(detail={"leading": True}) and not writer.write()
    ticks.t = 10
    assert writer.write()
    broken = HeartbeatWriter(lambda: (_ for _ in ()).throw(OSError("store gone")), "beat", "beat@a", 10, clock=ticks)
    assert broken.write() is False  # no exception into the process it reports on
    assert broken.write() is False and broken.writes == 0
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(ComponentHeartbeat)) == 1


def test_a_worker_thread_writes_its_current_queues_and_says_when_it_stops(store, clock):
    queues = ["schema", "metrics"]
    heartbeat = WorkerHeartbeat(lambda: store, "w9@a", 0.05, lambda: list(queues))
    heartbeat.start()
    wait_for(lambda: ("worker", "w9@a") in rows(store), 5, what="first heartbeat")
    queues.append("alerts")  # a queue added at run time (celery control add_consumer)
    wait_for(lambda: rows(store)[("worker", "w9@a")].queues == ["alerts", "metrics", "schema"], 5,
             what="queues refreshed")
    heartbeat.stop()
    row = rows(store)[("worker", "w9@a")]
    assert row.detail == {"stopped": True} and row.queues == ["alerts", "metrics", "schema"]


def test_beat_writes_after_a_tick_and_its_interval_covers_the_gap_between_ticks(store):
    from types import SimpleNamespace

    from monitor_app.selfmon.reporters import BeatHeartbeat

    class Scheduler:
        max_interval = 300  # celery's default: beat sleeps until its next entry, at most this
        ticks = 0

        def tick(self):
            self.ticks += 1
            return 1.5

        def close(self):
            self.closed = True

    scheduler = Scheduler()
    service = SimpleNamespace(scheduler=scheduler, app=SimpleNamespace(conf=SimpleNamespace(
        beat_schedule={"sweep": {"task": "alerts.sweep_outbox", "schedule": 15.0},
                       "prune": {"task": "maintenance.prune", "schedule": 3600.0}})))
    heartbeat = BeatHeartbeat(lambda: store, interval=2)
    heartbeat.install(service)
    assert scheduler.tick() == 1.5 and scheduler.tick() == 1.5 and scheduler.ticks == 2
    (row,) = rows(store).values()
    assert row.kind == "beat" and row.interval == 15 and row.detail == {"scheduler": "Scheduler"}
    assert heartbeat.writer.writes == 1  # the second tick fell within the interval
    scheduler.close()
    assert scheduler.closed and rows(store)[("beat", row.instance)].detail["stopped"] is True
