"""dbmon's own metrics (tasks, notifications, detection latency), served on GET /metrics after
the monitored databases' values.

A value counted in a Celery pool child must show through whichever gunicorn worker answers the
scrape, so every dbmon process on a machine writes its values to files in one directory
(prometheus_client's multiprocess mode) and the scrape adds the files up. prometheus_client
chooses where values live when it is imported, so each long-running process claims the directory
(`claim_directory`) before anything imports it; forked children (pool processes, gunicorn
workers) inherit the choice.

The directory is emptied once per deployment start, not per process: every process holds a
shared lock on it while it lives, and only a process that finds nobody holding it (the first of
a fresh `dbmon up`, or of a set of processes started one by one) empties it. A pool child that
exits keeps its counts in its file, so totals never drop while the deployment runs.

Recording never fails the work it measures: a hook that raises is logged once and ignored. A
process without the directory (unit tests, one-off commands) records into prometheus_client's
default registry, which GET /metrics does not serve: one process's counts are not the deployment's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import IO, Any, Callable, TypeVar

log = logging.getLogger("dbmon.own_metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
TASK_STATES = ("succeeded", "failed", "retried")
NOTIFICATION_OUTCOMES = ("sent", "failed", "suppressed")
# Task bodies run from milliseconds (a dispatch) to minutes (a file scan).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# Waits range from a poll interval to a backlog or a rescan that found an hour-old change.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)
# Only prometheus_client's own files are removed, however the directory is misconfigured.
_VALUE_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_\d+\.db$")


class OwnMetrics:
    """The metric objects. Label values are bounded: task names and queues are fixed in code,
    channels are counted by kind (webhook, slack ...), never by name."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram

        self.tasks = Counter("dbmon_tasks", "dbmon task runs by how they ended", ("task", "state"),
                             registry=registry)
        self.task_duration = Histogram("dbmon_task_duration_seconds", "Time a dbmon task body ran", ("task",),
                                       buckets=DURATION_BUCKETS, registry=registry)
        self.queue_lag = Histogram("dbmon_task_queue_lag_seconds", "From a run's request in the task ledger to "
                                   "its start on a worker", ("queue",), buckets=LATENCY_BUCKETS, registry=registry)
        self.notifications = Counter("dbmon_notifications", "Notification delivery attempts by outcome",
                                     ("channel_kind", "outcome"), registry=registry)
        self.detection = Histogram("dbmon_detection_seconds", "From an event's observation to it being stored "
                                   "(stored) or to its first notification being delivered (notified)", ("stage",),
                                   buckets=LATENCY_BUCKETS, registry=registry)
        self.notification_latency = Histogram("dbmon_notification_latency_seconds", "From an event being stored "
                                              "to its first notification being delivered", ("channel_kind",),
                                              buckets=LATENCY_BUCKETS, registry=registry)


_build_lock = threading.Lock()
_metrics: OwnMetrics | None = None
_logged: set[str] = set()
_held: list[IO[bytes]] = []  # this process's share of the directory: closing it would release the lock
F = TypeVar("F", bound=Callable[..., Any])


def _current() -> OwnMetrics:
    global _metrics
    if _metrics is None:
        with _build_lock:
            if _metrics is None:
                from prometheus_client import REGISTRY, values

                shared = bool(getattr(values.ValueClass, "_multiprocess", False))
                if os.environ.get(ENV) and not shared:
                    log.warning("%s was set after prometheus_client was imported: this process's own metrics "
                                "are not shared with the other processes", ENV)
                # Shared values live in the directory's files; registering them would serve them twice.
                _metrics = OwnMetrics(None if shared else REGISTRY)
    return _metrics


def _log_once(what: str) -> None:
    if what not in _logged:
        _logged.add(what)
        log.warning("dbmon's own metrics: %s failed; its later failures are not logged", what, exc_info=True)


def _guarded(fn: F) -> F:
    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a metric must never fail the task or delivery it measures
            _log_once(fn.__name__)
            return None

    return run  # type: ignore[return-value]


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _seconds(start: datetime, end: datetime) -> float:
    """`end - start`, never negative (a monitored host's clock may run ahead); naive times are UTC."""
    start, end = (t if t.tzinfo else t.replace(tzinfo=timezone.utc) for t in (start, end))
    return max(0.0, (end - start).total_seconds())


# -- hooks ---------------------------------------------------------------------------------------


@_guarded
def task_started(queue: str, requested_at: datetime | None, started_at: datetime) -> None:
    """`requested_at` is None when the wait is unknown or not the queue's (a retry's backoff)."""
    if requested_at is not None:
        _current().queue_lag.labels(queue).observe(_seconds(requested_at, started_at))


@_guarded
def task_finished(task: str, state: str, seconds: float) -> None:
    """`seconds`: how long the task body ran."""
    metrics = _current()
    metrics.tasks.labels(task, _one_of(state, TASK_STATES)).inc()
    metrics.task_duration.labels(task).observe(max(0.0, seconds))


@_guarded
def notification_outcome(channel_kind: str, outcome: str) -> None:
    _current().notifications.labels(channel_kind, _one_of(outcome, NOTIFICATION_OUTCOMES)).inc()


@_guarded
def event_stored(observed_at: datetime, detected_at: datetime) -> None:
    _current().detection.labels("stored").observe(_seconds(observed_at, detected_at))


@_guarded
def notification_delivered(store: Any, row: Any, channel_kind: str, sent_at: datetime) -> None:
    """After a sent notification committed: a firing notification's delay from the earliest event
    of its incident's alerts. Repeats, follow-ups and resolutions measure nothing about detection;
    alerts from metric thresholds have no event. Read in its own session, so a failure here cannot
    touch the delivery's transaction."""
    if row.kind != "firing" or row.incident_id is None:
        return
    from sqlalchemy import select

    from monitor_app.store.models.alerting import Alert
    from monitor_app.store.models.core import Event

    with store.session() as session:
        first = session.execute(select(Event.observed_at, Event.detected_at).join(Alert, Alert.event_id == Event.id)
                                .where(Alert.incident_id == row.incident_id)
                                .order_by(Event.observed_at).limit(1)).first()
    if first is None:
        return
    metrics = _current()
    metrics.detection.labels("notified").observe(_seconds(first.observed_at, sent_at))
    metrics.notification_latency.labels(channel_kind).observe(_seconds(first.detected_at, sent_at))


# -- the shared directory ------------------------------------------------------------------------


class DirectoryClaim:
    """This process's share of the directory; `emptied` when it was the deployment's first."""

    def __init__(self, path: Path, lock: IO[bytes], emptied: bool, removed: int) -> None:
        self.path, self._lock, self.emptied, self.removed = path, lock, emptied, removed

    def release(self) -> None:
        """Give the share up (the process exiting does the same)."""
        if self._lock in _held:
            _held.remove(self._lock)
        self._lock.close()


def configured_directory() -> Path | None:
    raw = os.environ.get(ENV)
    return Path(raw) if raw else None


def claim_directory(path: Path) -> DirectoryClaim | None:
    """Use `path` for this process and every process it forks or starts; call it before anything
    imports prometheus_client. None (values stay per process) when the directory is unusable."""
    lock: IO[bytes] | None = None
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = open(path / ".in-use.lock", "ab")
        # The gate makes check-then-empty one step: two processes starting together cannot both
        # find the directory unheld, nor can one empty it while the other is taking its share.
        with open(path / ".claim.lock", "ab") as gate:
            fcntl.flock(gate, fcntl.LOCK_EX)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                emptied = True
            except BlockingIOError:
                emptied = False
            removed = _empty(path) if emptied else 0
            fcntl.flock(lock, fcntl.LOCK_SH)
    except OSError as exc:
        if lock is not None:
            lock.close()
        log.warning("dbmon's own metrics stay per process: cannot use %s: %s", path, exc.strerror or exc)
        return None
    _held.append(lock)
    os.environ[ENV] = str(path)
    if removed:
        log.info("dbmon's own metrics: removed %d value files of the previous run from %s", removed, path)
    return DirectoryClaim(path, lock, emptied, removed)


def _empty(path: Path) -> int:
    removed = 0
    for entry in os.scandir(path):
        if _VALUE_FILE.match(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            removed += 1
    return removed


@_guarded
def mark_process_dead(pid: int) -> None:
    """For a child that exited (gunicorn worker, Celery pool process): its live-gauge files go;
    its counters stay, so totals do not drop."""
    path = configured_directory()
    if path is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(path))


# -- exposition ----------------------------------------------------------------------------------


class _DbmonFamilies:
    """Only dbmon's own families, whatever else might write into the directory."""

    def __init__(self, collector: Any) -> None:
        self.collector = collector

    def collect(self):
        return [family for family in self.collector.collect() if family.name.startswith("dbmon_")]


def exposition(directory: Path | None = None) -> bytes:
    """Every process's values added up, in Prometheus' text format; empty without the directory.
    A broken value file costs this section (a comment says so), never the monitored metrics."""
    path = directory or configured_directory()
    if path is None:
        return b""
    try:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_DbmonFamilies(MultiProcessCollector(None, path=str(path))))
        return generate_latest(registry)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        _log_once("exposition")
        return f"# dbmon's own metrics are unavailable: {type(exc).__name__}\n".encode()
