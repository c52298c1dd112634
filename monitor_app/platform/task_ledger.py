"""The task ledger's rules: claim, lease, finish, and re-send what a broker lost.

A run is claimable when it is queued, or running with an expired lease (its
worker died). A live worker keeps renewing its lease, so a lease only expires
when nobody is working on the run any more.

A queued run whose grace ran out is not always lost: with a thousand targets the queue can
hold more than a grace period's work. Queues are first in, first out, so a queued run is
taken as lost only once a run sent after it has started, or when nothing on its queue has
started for a grace period (no worker, or the broker lost everything); otherwise it is waiting
its turn and keeps its place instead of being sent again behind the backlog it is part of.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, insert, or_, select, update

from monitor_app.store.base import Store, utcnow
from monitor_app.store.models import TaskRun

# (task name, kwargs, run id, queue) -> publishes a message; may raise if the broker is down.
Sender = Callable[[str, dict, str, str], None]

# Runs started lately that were requested longer ago than this are not looked at as evidence.
STARTED_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class LeasePolicy:
    running_lease: float = 30.0  # renewed every third of this while a task runs
    queued_grace: float = 60.0  # a queued run not started by then is sent again
    max_sends: int = 10


class Ledger:
    def __init__(self, store: Store, policy: LeasePolicy | None = None):
        self.store = store
        self.policy = policy or LeasePolicy()

    def record(self, name: str, kwargs: dict, *, queue: str, requested_by: str = "system",
               kind: str | None = None) -> str:
        run_id = str(uuid.uuid4())
        with self.store.session() as s:
            s.add(TaskRun(id=run_id, name=name, kind=kind, kwargs=kwargs, queue=queue,
                          requested_by=requested_by, status="queued",
                          lease_until=utcnow() + timedelta(seconds=self.policy.queued_grace)))
        return run_id

    def record_many(self, name: str, kwargs_list: list[dict], *, queue: str,
                    requested_by: str = "system") -> list[str]:
        """`record` for a fan-out: one transaction (one INSERT) for all its runs, not one each."""
        if not kwargs_list:
            return []
        run_ids = [str(uuid.uuid4()) for _ in kwargs_list]
        now = utcnow()
        lease = now + timedelta(seconds=self.policy.queued_grace)
        with self.store.session() as s:
            s.execute(insert(TaskRun), [
                {"id": run_id, "name": name, "kind": None, "kwargs": kwargs, "queue": queue, "status": "queued",
                 "attempts": 0, "sends": 1, "requested_by": requested_by, "requested_at": now, "lease_until": lease}
                for run_id, kwargs in zip(run_ids, kwargs_list, strict=True)])
        return run_ids

    def pending_assets(self, name: str) -> set[int]:
        """Asset ids of `name` runs queued or running: a fan-out need not add another behind them."""
        with self.store.session() as s:
            kwargs = s.scalars(select(TaskRun.kwargs).where(TaskRun.status.in_(("queued", "running")),
                                                            TaskRun.name == name)).all()
        return {k["asset_id"] for k in kwargs if isinstance(k, dict) and isinstance(k.get("asset_id"), int)}

    def claim(self, run_id: str, *, name: str, kwargs: dict, queue: str) -> bool:
        """True if this delivery should run. A run unknown to the ledger (sent by beat) is adopted."""
        now = utcnow()
        lease = now + timedelta(seconds=self.policy.running_lease)
        with self.store.session() as s:
            row = s.get(TaskRun, run_id)
            if row is None:
                s.add(TaskRun(id=run_id, name=name, kwargs=kwargs, queue=queue, status="running",
                              attempts=1, started_at=now, lease_until=lease))
                return True
            # Conditional UPDATE: if two deliveries race, only one sees a row to update.
            claimed = s.execute(
                update(TaskRun)
                .where(TaskRun.id == run_id,
                       or_(TaskRun.status == "queued",
                           (TaskRun.status == "running") & (TaskRun.lease_until < now)))
                .values(status="running", attempts=TaskRun.attempts + 1, started_at=now, lease_until=lease)
            ).rowcount
            return claimed == 1

    def renew(self, run_id: str) -> None:
        with self.store.session() as s:
            s.execute(update(TaskRun).where(TaskRun.id == run_id, TaskRun.status == "running")
                      .values(lease_until=utcnow() + timedelta(seconds=self.policy.running_lease)))

    def finish(self, run_id: str, result: dict | None) -> None:
        with self.store.session() as s:
            s.execute(update(TaskRun).where(TaskRun.id == run_id)
                      .values(status="done", result=result, error=None, finished_at=utcnow(), lease_until=None))

    def requeue(self, run_id: str, error: str, countdown: float) -> None:
        """A retry was scheduled: the run waits for it, and counts as lost only after that."""
        with self.store.session() as s:
            s.execute(update(TaskRun).where(TaskRun.id == run_id)
                      .values(status="queued", error=error[:4000],
                              lease_until=utcnow() + timedelta(seconds=countdown + self.policy.queued_grace)))

    def hand_back(self, run_ids: list[str]) -> int:
        """A stopping worker gives up runs it has not finished: due for redelivery at once."""
        with self.store.session() as s:
            return s.execute(update(TaskRun).where(TaskRun.id.in_(run_ids), TaskRun.status == "running")
                             .values(status="queued", lease_until=utcnow(),
                                     error="handed back by a stopping worker")).rowcount

    def fail(self, run_id: str, error: str) -> None:
        with self.store.session() as s:
            s.execute(update(TaskRun).where(TaskRun.id == run_id)
                      .values(status="failed", error=error[:4000], finished_at=utcnow(), lease_until=None))

    def redeliver(self, send: Sender, now: datetime | None = None) -> dict:
        """Send again every run whose lease expired; give up on runs sent too often."""
        now = now or utcnow()
        resent = gave_up = waiting = 0
        grace = timedelta(seconds=self.policy.queued_grace)
        with self.store.session() as s:
            overdue = s.scalars(
                select(TaskRun).where(TaskRun.status.in_(("queued", "running")), TaskRun.lease_until < now)
                .order_by(TaskRun.requested_at).limit(500).with_for_update(skip_locked=True)
            ).all()
            # Per queue, the newest request among runs started within the grace: a queue absent
            # here has not moved; a run sent before that request and not started was skipped.
            newest_started = dict(s.execute(
                select(TaskRun.queue, func.max(TaskRun.requested_at))
                .where(TaskRun.requested_at >= now - STARTED_LOOKBACK, TaskRun.started_at >= now - grace)
                .group_by(TaskRun.queue)).all())
            to_send = []
            for row in overdue:
                newest = newest_started.get(row.queue)
                sent_at = row.lease_until - grace if row.lease_until is not None else None
                if row.status == "queued" and newest is not None and sent_at is not None and newest <= sent_at:
                    row.lease_until = now + grace  # its queue is moving and nothing sent after it started
                    waiting += 1
                    continue
                if row.sends >= self.policy.max_sends:
                    row.status, row.finished_at, row.lease_until = "failed", now, None
                    row.error = f"lost: not completed after {row.sends} deliveries"
                    gave_up += 1
                    continue
                row.sends += 1
                row.status = "queued"
                row.lease_until = now + timedelta(seconds=self.policy.queued_grace)
                to_send.append((row.name, dict(row.kwargs), row.id, row.queue))
        for name, kwargs, run_id, queue in to_send:
            try:
                send(name, kwargs, run_id, queue)
                resent += 1
            except Exception:  # noqa: BLE001 - the broker is down; the next sweep tries again
                pass
        return {"resent": resent, "gave_up": gave_up, "waiting": waiting}

    def get(self, run_id: str) -> TaskRun | None:
        with self.store.session() as s:
            return s.get(TaskRun, run_id)
