"""Audit rows for requests without a valid key, capped per source address and minute.

Anyone can send such requests, so recording each one would let a stranger fill the audit
trail and the disk. The first `limit` per address and minute are recorded in full; the rest
are counted in one summary row for that address and minute, kept up to date as they come.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from monitor_app.access import audit
from monitor_app.store.base import upsert_insert, utcnow
from monitor_app.store.models import AuditEntry
from monitor_app.store.models.audit import AnonymousAuditWindow

ACTOR = "anonymous"
SUMMARY_ACTION = "anonymous.suppressed"
WINDOW = timedelta(minutes=1)
KEEP_WINDOWS = timedelta(minutes=10)


def record(store, *, limit: int, remote_addr: str | None, now: datetime | None = None, **fields) -> None:
    """Record one anonymous row, or count it in the address's summary row once over `limit`."""
    now = now or utcnow()
    window = now.replace(second=0, microsecond=0)
    addr = (remote_addr or "unknown")[:64]
    with store.session() as s:
        seen = _count(s, addr, window)
        if seen == 1:
            s.execute(delete(AnonymousAuditWindow).where(AnonymousAuditWindow.window_start < window - KEEP_WINDOWS))
        if seen <= limit:
            audit.record(s, actor=ACTOR, remote_addr=addr, **fields)
            return
        detail = {"window_start": window.isoformat(), "window_seconds": int(WINDOW.total_seconds()),
                  "limit": limit, "suppressed": seen - limit, "last_action": fields.get("action", "")[:64],
                  "last_target": fields.get("target", "")[:255]}
        # The upsert above holds this window's row lock, so concurrent requests update in turn.
        row = s.get(AnonymousAuditWindow, (addr, window))
        if row.summary_id is None:
            entry = audit.record(s, actor=ACTOR, action=SUMMARY_ACTION, target=addr, outcome="denied",
                                 detail=detail, remote_addr=addr)
            s.flush()
            row.summary_id = entry.id
        else:
            s.execute(update(AuditEntry).where(AuditEntry.id == row.summary_id).values(detail=detail))


def _count(s: Session, addr: str, window: datetime) -> int:
    """Atomically add one to the address's count for this minute and return the new count."""
    stmt = upsert_insert(s, AnonymousAuditWindow).values(remote_addr=addr, window_start=window, seen=1)
    stmt = stmt.on_conflict_do_update(index_elements=["remote_addr", "window_start"],
                                      set_={"seen": AnonymousAuditWindow.seen + 1})
    return s.execute(stmt.returning(AnonymousAuditWindow.seen)).scalar_one()
