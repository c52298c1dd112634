"""The durable outbox. A notification is a row before it is a network call:

- `enqueue` inserts under a unique idempotency key, so queueing the same (incident,
  channel, state) twice is a no-op;
- `claim` moves a due row to `sending` with a lease by a conditional UPDATE, so two
  workers never send one row at once, and a row whose worker died mid-send (lease
  expired) is claimable again;
- `retry` pushes `next_attempt_at` out exponentially while a channel is down.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor_app.alerting.config import OutboxSettings
from monitor_app.store.models.alerting import Notification, NotificationAttempt


def enqueue(session: Session, *, key: str, channel: str, kind: str, incident_id: int | None,
            due_at: datetime, now: datetime, payload: dict | None = None) -> Notification | None:
    """The new row, or None when a row with this key already exists."""
    if session.scalar(select(Notification.id).where(Notification.idempotency_key == key)) is not None:
        return None
    # A row due now is dispatched by whoever queued it, right after commit: mark it so the
    # sweep does not send a second task for it unless that dispatch got lost.
    row = Notification(idempotency_key=key, channel=channel, kind=kind, incident_id=incident_id,
                       payload=payload or {}, status="pending", attempts=0, created_at=now,
                       next_attempt_at=due_at, dispatched_at=now if due_at <= now else None)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def _claimable(now: datetime):
    return or_(and_(Notification.status == "pending", Notification.next_attempt_at <= now),
               and_(Notification.status == "sending", Notification.lease_until < now))


def claim(session: Session, notification_id: int, now: datetime, lease: float) -> Notification | None:
    result = session.execute(
        update(Notification)
        .where(Notification.id == notification_id, _claimable(now))
        .values(status="sending", lease_until=now + timedelta(seconds=lease), attempts=Notification.attempts + 1,
                dispatched_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    row = session.get(Notification, notification_id)
    session.refresh(row)
    return row


def take_due(session: Session, now: datetime, redispatch_after: float, limit: int = 500) -> list[int]:
    """Rows to hand to workers now, marked as dispatched. A row already dispatched is
    handed out again only after `redispatch_after` seconds (its task was lost)."""
    fresh = and_(Notification.dispatched_at.is_not(None),
                 Notification.dispatched_at > now - timedelta(seconds=redispatch_after))
    ids = list(session.scalars(select(Notification.id).where(_claimable(now), ~fresh)
                               .order_by(Notification.next_attempt_at).limit(limit)))
    if ids:
        session.execute(update(Notification).where(Notification.id.in_(ids)).values(dispatched_at=now)
                        .execution_options(synchronize_session=False))
    return ids


def log(session: Session, row: Notification, outcome: str, detail: str, now: datetime,
        duration_ms: float | None = None) -> None:
    session.add(NotificationAttempt(notification_id=row.id, incident_id=row.incident_id, channel=row.channel,
                                    at=now, outcome=outcome, detail=detail[:4000], duration_ms=duration_ms))


def _still_ours(session: Session, row: Notification, attempts: int) -> Notification | None:
    """Re-read the row; if another worker re-claimed it (our lease ran out) leave it alone."""
    current = session.scalars(select(Notification).where(Notification.id == row.id).with_for_update()).first()
    if current is None or current.status != "sending" or current.attempts != attempts:
        return None
    return current


def mark_sent(session: Session, row: Notification, attempts: int, now: datetime, detail: str,
              duration_ms: float) -> None:
    current = _still_ours(session, row, attempts)
    if current is not None:
        current.status, current.sent_at, current.lease_until, current.last_error = "sent", now, None, None
    if attempts > 1:
        # The channel is back: rows of it waiting out their backoff may go now.
        session.execute(update(Notification)
                        .where(Notification.channel == row.channel, Notification.status == "pending",
                               Notification.attempts > 0, Notification.next_attempt_at > now)
                        .values(next_attempt_at=now, dispatched_at=None)
                        .execution_options(synchronize_session=False))
    log(session, row, "sent", detail, now, duration_ms)


def backoff(settings: OutboxSettings, attempts: int, key: str) -> float:
    base = min(settings.backoff_base * (2 ** max(attempts - 1, 0)), settings.backoff_max)
    # Deterministic jitter (+-20%) spreads retries of many rows without making tests random.
    spread = int(hashlib.sha256(f"{key}:{attempts}".encode()).hexdigest()[:4], 16) / 0xFFFF
    return base * (0.8 + 0.4 * spread)


def mark_failed_attempt(session: Session, row: Notification, attempts: int, now: datetime, error: str,
                        settings: OutboxSettings, *, permanent: bool, retry_after: float | None = None,
                        duration_ms: float | None = None) -> str:
    """Schedules a retry, or gives up when the error is permanent or the row is too old."""
    current = _still_ours(session, row, attempts)
    too_old = (now - row.created_at).total_seconds() > settings.give_up_after
    outcome = "failed" if (permanent or too_old) else "retry"
    if current is not None:
        current.last_error = error[:4000]
        current.lease_until = None
        if outcome == "failed":
            current.status = "failed"
        else:
            delay = max(backoff(settings, attempts, row.idempotency_key), retry_after or 0.0)
            current.status = "pending"
            current.next_attempt_at = now + timedelta(seconds=delay)
            current.dispatched_at = None
    log(session, row, outcome, error, now, duration_ms)
    return outcome


def release(session: Session, row: Notification, now: datetime) -> None:
    """Hand a claimed row back untouched (e.g. its channel was removed and re-added)."""
    session.execute(update(Notification).where(Notification.id == row.id)
                    .values(status="pending", lease_until=None, next_attempt_at=now, dispatched_at=None))
