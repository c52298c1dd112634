"""Writing to the append-only event log.

New event ids are remembered on the session so that, once the transaction commits,
the store can tell its listeners (alert evaluation) without a polling delay.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.errors import DbmonError
from monitor_app.platform import own_metrics
from monitor_app.store.base import utcnow
from monitor_app.store.models import Event
from monitor_app.platform.vocabulary import SEVERITIES

NEW_EVENTS_KEY = "dbmon_new_event_ids"


def record_event(
    session: Session,
    *,
    type: str,
    severity: str = "info",
    asset_id: int | None = None,
    summary: str = "",
    payload: dict | None = None,
    observed_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> Event | None:
    """Append one event; returns None when `dedupe_key` was already recorded (a retried task)."""
    if severity not in SEVERITIES:
        raise DbmonError(f"unknown severity {severity!r}", permanent=True, field="severity")
    if dedupe_key is not None:
        exists = session.scalar(select(Event.id).where(Event.dedupe_key == dedupe_key))
        if exists is not None:
            return None
    now = utcnow()
    event = Event(
        type=type,
        severity=severity,
        asset_id=asset_id,
        summary=summary,
        payload=payload or {},
        observed_at=observed_at or now,
        detected_at=now,
        dedupe_key=dedupe_key,
    )
    session.add(event)
    session.flush()
    session.info.setdefault(NEW_EVENTS_KEY, []).append(event.id)
    if observed_at is not None:  # without it the recorder is the observer: no delay to measure
        own_metrics.event_stored(observed_at, now)
    return event
