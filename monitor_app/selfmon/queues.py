"""How much work waits on each queue, and for how long, from two places.

The task ledger works for both brokers: every dispatched run is a row before it is a message, so
its queued runs that never started are the backlog and the oldest `requested_at` is the lag.
Runs beat sends are not in the ledger until a worker claims them, so the broker is asked too:
Redis keeps each queue as a list named after it (LLEN; kombu's priority levels are lists of their
own beside it), and the filesystem broker keeps one file per message (count, oldest mtime). The
broker's count is its own figure, reported beside the ledger's rather than added to it: a
ledger run also waits in the broker, so their sum would count it twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor_app.config.settings import Settings
from monitor_app.platform.task_queues import QUEUES
from monitor_app.store.models import TaskRun

# kombu's Redis transport: a message of priority p > 0 waits in "<queue>\x06\x16<p>".
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
# A filesystem broker folder with more files than this is counted this far: the figure then
# says "at least", and the self-check does not spend seconds listing a runaway backlog.
MAX_FILES_SCANNED = 100_000


@dataclass(frozen=True)
class LedgerQueue:
    waiting: int  # queued and never started
    oldest_requested_at: datetime | None
    retrying: int  # queued again after starting: a retry's countdown or a hand-back


@dataclass(frozen=True)
class BrokerQueue:
    depth: int
    oldest_seconds: float | None  # only where the broker keeps a time (the filesystem broker)


def ledger_queues(session: Session) -> dict[str, LedgerQueue]:
    """Per queue, from the ledger's queued runs (the status index keeps this a small read)."""
    rows = session.execute(
        select(TaskRun.queue, TaskRun.attempts == 0, func.count(), func.min(TaskRun.requested_at))
        .where(TaskRun.status == "queued").group_by(TaskRun.queue, TaskRun.attempts == 0)).all()
    found: dict[str, dict] = {}
    for queue, fresh, count, oldest in rows:
        entry = found.setdefault(queue, {"waiting": 0, "oldest_requested_at": None, "retrying": 0})
        if fresh:
            entry["waiting"] += int(count)
            entry["oldest_requested_at"] = oldest
        else:
            entry["retrying"] += int(count)
    return {q: LedgerQueue(**found.get(q, {"waiting": 0, "oldest_requested_at": None, "retrying": 0}))
            for q in sorted(set(QUEUES) | set(found))}


def broker_queues(settings: Settings, now_epoch: float) -> dict[str, BrokerQueue] | None:
    """The broker's own count per queue; None when it cannot be read (the broker check says why)."""
    try:
        if settings.embedded_broker:
            return filesystem_queues(settings.broker_dir / "queue", now_epoch)
        return redis_queues(settings.resolved_broker_url)
    except Exception:  # noqa: BLE001 - an unreadable broker is reported by the broker check, not here
        return None


def redis_queues(url: str, queues: tuple[str, ...] = QUEUES) -> dict[str, BrokerQueue]:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for key in _redis_keys(queue):
                pipe.llen(key)
        lengths = pipe.execute()
    finally:
        client.close()
    per_queue = len(_PRIORITY_STEPS) + 1
    return {queue: BrokerQueue(sum(int(n) for n in lengths[i * per_queue:(i + 1) * per_queue]), None)
            for i, queue in enumerate(queues)}


def _redis_keys(queue: str) -> list[str]:
    return [queue] + [f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in _PRIORITY_STEPS]


def filesystem_queues(folder: Path, now_epoch: float, queues: tuple[str, ...] = QUEUES) -> dict[str, BrokerQueue]:
    """Message files are named `<ms>_<uuid>.<queue>.msg` (workers/filesystem_broker.py); a file
    another process renames or deletes while this lists the folder is skipped."""
    depth = dict.fromkeys(queues, 0)
    oldest: dict[str, float] = {}
    if not folder.is_dir():
        return {q: BrokerQueue(0, None) for q in queues}
    with os.scandir(folder) as entries:
        for scanned, entry in enumerate(entries):
            if scanned >= MAX_FILES_SCANNED:
                break
            name = entry.name
            if not name.endswith(".msg"):
                continue  # `.partial` files are messages still being written
            queue = name[:-len(".msg")].rpartition(".")[2]
            if queue not in depth:
                continue
            try:
                mtime = entry.stat().st_mtime
            except OSError:
                continue
            depth[queue] += 1
            oldest[queue] = min(oldest.get(queue, mtime), mtime)
    return {q: BrokerQueue(depth[q], max(0.0, now_epoch - oldest[q]) if q in oldest else None) for q in queues}
