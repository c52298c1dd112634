"""No silent stop: a collector that keeps failing becomes an event rules can page on.

Every collector (schema checks, posture checks, container discovery and probes, TLS
certificate probes, host sampling) reports each attempt here. Events are recorded on
transitions only: `<collector>.check_failed` when a streak of failures reaches the
threshold (1 by default: the first failure after success), `<collector>.check_recovered`
at the first success after that. A failing collector retrying every few seconds therefore
says so once, not once per attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor_app.platform.event_log import record_event
from monitor_app.store.base import utcnow
from monitor_app.store.models.collectors import CollectorHealth
from monitor_app.store.models.core import Asset

# Every collector that reports here; its events are `<collector>.check_failed` / `.check_recovered`.
COLLECTORS = ("schema", "posture", "containers.discovery", "containers.probe", "tls", "host", "metrics.pg_fast",
              "metrics.pg_medium", "metrics.pg_slow", "metrics.pgbouncer", "metrics.sqlite", "metrics.container",
              "metrics.mysql")
ERROR_KEPT = 2000


@dataclass(frozen=True)
class Attempt:
    """One collector run against one subject: `error` None means it worked."""

    collector: str
    subject: str
    asset_id: int | None = None
    name: str = ""
    error: str | None = None


def asset_subject(asset_id: int) -> str:
    return f"asset:{asset_id}"


def _row(session: Session, attempt: Attempt) -> CollectorHealth | None:
    row = session.get(CollectorHealth, (attempt.collector, attempt.subject))
    if row is not None:
        return row
    if attempt.asset_id is not None and session.get(Asset, attempt.asset_id) is None:
        return None  # the asset was deleted meanwhile: nothing left to be healthy or not
    row = CollectorHealth(collector=attempt.collector, subject=attempt.subject, asset_id=attempt.asset_id,
                          failing=False, streak=0)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another worker created it between our read and insert: use theirs.
        row = session.get(CollectorHealth, (attempt.collector, attempt.subject), populate_existing=True)
    return row


def _named(session: Session, attempt: Attempt) -> Attempt:
    if attempt.name or attempt.asset_id is None:
        return attempt
    asset = session.get(Asset, attempt.asset_id)
    return replace(attempt, name=asset.name if asset is not None else attempt.subject)


def _claim(session: Session, attempt: Attempt, failing: bool) -> bool:
    """Flip `failing` by conditional UPDATE: only the worker whose UPDATE changed the row speaks."""
    changed: Any = session.execute(
        update(CollectorHealth)
        .where(CollectorHealth.collector == attempt.collector, CollectorHealth.subject == attempt.subject,
               CollectorHealth.failing.is_(not failing))
        .values(failing=failing).execution_options(synchronize_session=False))
    return changed.rowcount == 1


def record_attempt(session: Session, attempt: Attempt, *, failures_before_event: int = 1,
                   now: datetime | None = None) -> str | None:
    """Store one attempt's outcome; returns the event type recorded, if this was a transition."""
    now = now or utcnow()
    row = _row(session, attempt)
    if row is None:
        return None
    attempt = _named(session, attempt)
    if attempt.error is None:
        return _succeeded(session, row, attempt, now)
    return _failed(session, row, attempt, max(1, failures_before_event), now)


def _failed(session: Session, row: CollectorHealth, attempt: Attempt, threshold: int, now: datetime) -> str | None:
    row.streak = (row.streak or 0) + 1
    since = row.first_failure_at if row.streak > 1 and row.first_failure_at else now
    row.first_failure_at, row.last_failure_at, row.last_error = since, now, (attempt.error or "")[:ERROR_KEPT]
    session.flush()
    if row.failing or row.streak < threshold or not _claim(session, attempt, failing=True):
        return None
    kind = f"{attempt.collector}.check_failed"
    record_event(session, type=kind, severity="warning", asset_id=attempt.asset_id,
                 summary=f"{attempt.name or attempt.subject}: {attempt.collector} failing "
                         f"({row.streak} in a row): {row.last_error}",
                 payload={"collector": attempt.collector, "subject": attempt.subject, "error": row.last_error,
                          "failures": row.streak, "since": since.isoformat()},
                 observed_at=now)
    _probe_soon(session, attempt.asset_id)
    session.refresh(row)
    return kind


def _probe_soon(session: Session, asset_id: int | None) -> None:
    """A collector that starts failing often means the asset is down: its next reachability
    probe comes at the next sweep, not at its slot, so `asset.down` follows within seconds and
    pages as one fault with this failure rather than as a second one half a minute later."""
    asset = session.get(Asset, asset_id) if asset_id is not None else None
    if asset is not None and asset.status == "up":
        asset.next_check_at = None


def _succeeded(session: Session, row: CollectorHealth, attempt: Attempt, now: datetime) -> str | None:
    streak, since, error = row.streak or 0, row.first_failure_at, row.last_error
    row.streak, row.last_success_at, row.first_failure_at = 0, now, None
    session.flush()
    if not row.failing or not _claim(session, attempt, failing=False):
        return None
    kind = f"{attempt.collector}.check_recovered"
    record_event(session, type=kind, severity="info", asset_id=attempt.asset_id,
                 summary=f"{attempt.name or attempt.subject}: {attempt.collector} works again "
                         f"after {streak} failed attempts",
                 payload={"collector": attempt.collector, "subject": attempt.subject, "failures": streak,
                          "since": since.isoformat() if since else None, "last_error": error},
                 observed_at=now)
    session.refresh(row)
    return kind


def health_rows(session: Session, *, failing_only: bool = False) -> list[CollectorHealth]:
    query = select(CollectorHealth).order_by(CollectorHealth.collector, CollectorHealth.subject)
    if failing_only:
        query = query.where(CollectorHealth.failing.is_(True))
    return list(session.scalars(query))


def as_dict(row: CollectorHealth) -> dict:
    return {"collector": row.collector, "subject": row.subject, "asset_id": row.asset_id, "failing": row.failing,
            "failures": row.streak, "last_error": row.last_error if row.streak else None,
            "failing_since": row.first_failure_at, "last_failure_at": row.last_failure_at,
            "last_success_at": row.last_success_at}


def report(store, attempt: Attempt, failures_before_event: int = 1) -> str | None:
    """`record_attempt` in a unit of work of its own, for collectors with no session open."""
    with store.session() as session:
        return record_attempt(session, attempt, failures_before_event=failures_before_event)
