"""What the worker and beat processes call from their Celery signals (workers/celery_app.py).

One worker heartbeat per process, started when the consumer is ready (its queues are known
then) and stopped when the worker shuts down; beat's heartbeat wraps its scheduler when beat
starts. Each builds its own store connection, in the thread that writes. Nothing here raises
into Celery: a process that cannot report still does its work.
"""

from __future__ import annotations

import logging

from monitor_app.config.settings import Settings
from monitor_app.selfmon.reporters import BeatHeartbeat, WorkerHeartbeat, consumer_queues
from monitor_app.store.base import Store

log = logging.getLogger("dbmon.selfmon")
_worker: WorkerHeartbeat | None = None


def start_worker(settings: Settings, consumer) -> None:
    global _worker
    if _worker is not None:
        return
    try:
        _worker = WorkerHeartbeat(lambda: Store(settings.resolved_database_url), str(consumer.hostname),
                                  settings.selfmon_heartbeat_interval, lambda: consumer_queues(consumer))
        _worker.start()
    except Exception:  # noqa: BLE001
        log.warning("worker heartbeat not started", exc_info=True)


def stop_worker() -> None:
    global _worker
    if _worker is None:
        return
    try:
        _worker.stop()
    except Exception:  # noqa: BLE001
        log.warning("worker heartbeat did not stop cleanly", exc_info=True)
    _worker = None


def start_beat(settings: Settings, service) -> None:
    try:
        BeatHeartbeat(lambda: Store(settings.resolved_database_url), settings.selfmon_heartbeat_interval).install(service)
    except Exception:  # noqa: BLE001
        log.warning("beat heartbeat not installed", exc_info=True)
