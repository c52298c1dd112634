"""The writing side of component heartbeats: one writer per component, called from its own loop.

A heartbeat must say "this loop runs", so each process writes from the loop it reports on: the
watcher from `run_forever`, beat after each scheduler tick, a worker from a thread started when its
consumer is ready (the consumer's own loop belongs to Celery). Writes are throttled to the
component's interval and never raise: a store outage must not stop the process it reports on,
and after a failed write the next try waits a whole interval (the store may be down for a while).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Callable, Iterable

from monitor_app.selfmon.components import Heartbeat, record
from monitor_app.store.base import Store, utcnow

log = logging.getLogger("dbmon.selfmon")


def this_host() -> str:
    return socket.gethostname()


class HeartbeatWriter:
    """Writes one component's row at most once per interval; `store` is built on first use, in
    the thread that writes (a store built before a fork must not be shared with the child)."""

    def __init__(self, store: Callable[[], Store], kind: str, instance: str, interval: float, *,
                 clock: Callable[[], float] = time.monotonic):
        self._store_factory = store
        self._store: Store | None = None
        self.kind, self.instance, self.interval = kind, instance, interval
        self.started_at = utcnow()
        self._clock = clock
        self._next = 0.0
        self._failing = False
        self.writes = 0

    def due(self) -> bool:
        return self._clock() >= self._next

    def write(self, *, queues: Iterable[str] = (), detail: dict | None = None, force: bool = False,
              extra: Iterable[Heartbeat] = ()) -> bool:
        """True when the row (and `extra` rows, e.g. a watcher's sources) was written now."""
        if not force and not self.due():
            return False
        self._next = self._clock() + self.interval  # also after a failure: a down store is not hammered
        beats = [self.heartbeat(queues=queues, detail=detail), *extra]
        try:
            if self._store is None:
                self._store = self._store_factory()
            record(self._store, beats, utcnow())
        except Exception as exc:  # noqa: BLE001 - never let reporting stop the process it reports on
            if not self._failing:
                log.warning("%s %s: cannot write its heartbeat row (%s); retrying every %.0f s",
                            self.kind, self.instance, type(exc).__name__, self.interval)
            self._failing = True
            return False
        if self._failing:
            log.info("%s %s: heartbeat row written again", self.kind, self.instance)
        self._failing = False
        self.writes += 1
        return True

    def heartbeat(self, *, kind: str | None = None, instance: str | None = None, queues: Iterable[str] = (),
                  detail: dict | None = None) -> Heartbeat:
        return Heartbeat(kind or self.kind, instance or self.instance, this_host(), os.getpid(), self.interval,
                         self.started_at, tuple(queues), dict(detail or {}))


class WorkerHeartbeat:
    """A worker's row, every interval, from a thread of the worker's main process.

    `queues` is asked each time, so queues added or cancelled at run time (celery control) show."""

    def __init__(self, store: Callable[[], Store], instance: str, interval: float,
                 queues: Callable[[], Iterable[str]]):
        self.writer = HeartbeatWriter(store, "worker", instance, interval)
        self._queues = queues
        self._last_queues: tuple[str, ...] = ()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="selfmon-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """A clean stop says so at once: its queues lose a consumer now, not three intervals later.
        The thread writes that last row itself; a store that does not answer delays the worker's
        shutdown by `timeout` at most."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.writer.write(queues=self._current_queues(), force=True)
            self._stop.wait(self.writer.interval)
        self.writer.write(queues=self._last_queues, detail={"stopped": True}, force=True)

    def _current_queues(self) -> tuple[str, ...]:
        try:
            found = tuple(sorted(str(q) for q in self._queues()))
        except Exception:  # noqa: BLE001 - mid-reconnect the consumer has no queues to show: keep the last
            return self._last_queues
        self._last_queues = found
        return found


def consumer_queues(consumer) -> list[str]:
    """The queues a Celery worker consumer takes messages from (read by attribute, so this module
    needs no Celery)."""
    task_consumer = getattr(consumer, "task_consumer", None)
    if task_consumer is not None and getattr(task_consumer, "queues", None):
        return [q.name for q in task_consumer.queues]
    return list(consumer.app.amqp.queues.consume_from)


class BeatHeartbeat:
    """Beat's row, written after a scheduler tick at most once per interval: a beat whose loop
    hangs (or that waits for the lock another beat holds) writes nothing."""

    def __init__(self, store: Callable[[], Store], interval: float):
        self.writer = HeartbeatWriter(store, "beat", f"beat@{this_host()}", interval)

    def install(self, service) -> None:
        """Wrap the tick and close of a `celery.beat.Service`'s scheduler. Beat sleeps until its next
        entry is due (at most its max interval), so the row's interval is at least that gap."""
        scheduler = service.scheduler
        tick, close = scheduler.tick, scheduler.close
        detail = {"scheduler": type(scheduler).__name__}
        gaps = [float(scheduler.max_interval or 0), *_entry_periods(service.app.conf.beat_schedule or {})]
        self.writer.interval = max(self.writer.interval, min((g for g in gaps if g > 0), default=0.0))

        def ticked(*args, **kwargs):
            result = tick(*args, **kwargs)
            self.writer.write(detail=detail)
            return result

        def closed(*args, **kwargs):
            self.writer.write(detail={**detail, "stopped": True}, force=True)
            return close(*args, **kwargs)

        scheduler.tick, scheduler.close = ticked, closed


def _entry_periods(beat_schedule: dict) -> list[float]:
    """Seconds between runs of each periodic entry of the configured schedule (crontab entries,
    which have no fixed period, are left out)."""
    periods = []
    for entry in beat_schedule.values():
        every = entry.get("schedule") if isinstance(entry, dict) else None
        every = getattr(every, "run_every", every)
        if isinstance(every, timedelta):
            every = every.total_seconds()
        if isinstance(every, (int, float)) and not isinstance(every, bool):
            periods.append(float(every))
    return periods
