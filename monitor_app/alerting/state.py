"""Alert lifecycle: pending -> firing -> resolved (or pending -> inactive when a
condition clears before its `for` duration), keyed by fingerprint so repeats deduplicate.

Flap detection counts firing/resolved transitions inside a window; an alert with too many
is marked flapping and its changes are held (no notifications) until it has been quiet for
the hold time. The sweep releases it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor_app.alerting.config import FlapSettings
from monitor_app.alerting.rules import Signal
from monitor_app.store.models.alerting import Alert

ACTIVE = ("pending", "firing")


def _load(session: Session, fp: str) -> Alert | None:
    return session.scalars(select(Alert).where(Alert.fingerprint == fp).with_for_update()).first()


def _create(session: Session, signal: Signal, now: datetime) -> Alert:
    alert = Alert(fingerprint=signal.fingerprint, rule=signal.rule.name, labels=signal.labels,
                  annotations=signal.annotations(), severity=signal.rule.severity, state="inactive",
                  asset_id=signal.asset_id, event_id=signal.event_id, last_seen_at=now, transitions=[],
                  fire_count=0, flapping=False, silenced=False, inhibited=False)
    try:
        with session.begin_nested():
            session.add(alert)
    except IntegrityError:
        # Another worker created it between our select and insert; use theirs.
        alert = _load(session, signal.fingerprint)
    return alert


def _record_transition(alert: Alert, now: datetime, flap: FlapSettings) -> None:
    horizon = now - timedelta(seconds=flap.window)
    kept = [t for t in (alert.transitions or []) if datetime.fromisoformat(t) > horizon]
    kept.append(now.isoformat())
    alert.transitions = kept[-(flap.transitions * 4):]
    if len(kept) >= flap.transitions:
        alert.flapping = True


def lock_all(session: Session, fingerprints: set[str]) -> dict[str, Alert]:
    """Load and lock a batch's alerts in one statement, in id order so that two workers
    locking overlapping batches cannot deadlock."""
    if not fingerprints:
        return {}
    rows = session.scalars(select(Alert).where(Alert.fingerprint.in_(sorted(fingerprints)))
                           .order_by(Alert.id).with_for_update())
    return {a.fingerprint: a for a in rows}


def apply(session: Session, signal: Signal, now: datetime, flap: FlapSettings,
          locked: dict[str, Alert] | None = None) -> tuple[Alert | None, str | None]:
    """Returns the alert and what happened to it: 'fired', 'resolved' or None.
    `locked` holds alerts already loaded under lock by `lock_all` (absent ones do not exist yet)."""
    alert = locked.get(signal.fingerprint) if locked is not None else _load(session, signal.fingerprint)
    if alert is None:
        if not signal.firing and signal.event_id is None:
            return None, None
        # A clearing event still leaves an (inactive) row: it records the event id, so an
        # older firing event evaluated late, out of order, cannot fire the alert again.
        alert = _create(session, signal, now)
        if locked is not None:
            locked[signal.fingerprint] = alert
    elif signal.event_id is not None and alert.event_id is not None and signal.event_id <= alert.event_id:
        return alert, None  # this event (or a newer one) was already applied: evaluation is idempotent
    if not signal.firing:
        alert.event_id = signal.event_id or alert.event_id
        return alert, clear(alert, now, flap)
    alert.last_seen_at = now
    alert.value = signal.value
    alert.event_id = signal.event_id or alert.event_id
    alert.annotations = signal.annotations()
    alert.fire_count = (alert.fire_count or 0) + 1
    if alert.state in ("resolved", "inactive"):
        alert.state = "pending"
        alert.pending_since = now
        alert.resolved_at = None
        alert.resolved_by = None
    # Only a threshold rule holds here; the series rules' `for` is their detector's persistence.
    hold = signal.rule.for_ if signal.rule.kind == "threshold" else 0.0
    if alert.state == "pending" and (now - alert.pending_since).total_seconds() >= hold:
        alert.state = "firing"
        alert.starts_at = now
        _record_transition(alert, now, flap)
        return alert, "fired"
    return alert, None


def clear(alert: Alert, now: datetime, flap: FlapSettings, by: str | None = None) -> str | None:
    if alert.state == "pending":
        alert.state = "inactive"
        alert.pending_since = None
        return None
    if alert.state != "firing":
        return None
    alert.state = "resolved"
    alert.resolved_at = now
    alert.resolved_by = by
    if by is None:
        _record_transition(alert, now, flap)
    return "resolved"


def release_flapping(alert: Alert, now: datetime, flap: FlapSettings) -> bool:
    """True when a flapping alert has been quiet long enough to notify again."""
    if not alert.flapping or not alert.transitions:
        return False
    if (now - datetime.fromisoformat(alert.transitions[-1])).total_seconds() < flap.hold:
        return False
    alert.flapping = False
    alert.transitions = []
    return True
