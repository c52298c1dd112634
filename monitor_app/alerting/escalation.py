"""Escalation policies with their state in the database.

Each escalating incident has one row: which step is next, when it is due, and a token.
A step task carries the token it was scheduled with and acts only if the row, locked,
still holds it; acting rotates the token. A duplicate delivery of the same task, a task
from before an acknowledge, or one racing another worker therefore does nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from monitor_app.alerting import outbox
from monitor_app.alerting.config import AlertingConfig, EscalationPolicy
from monitor_app.store.models.alerting import Alert, EscalationState, Incident, Notification


def start(session: Session, incident: Incident, name: str, policy: EscalationPolicy, now: datetime) -> EscalationState:
    state = EscalationState(incident_id=incident.id, policy=name, step=0, cycle=0, token=str(uuid.uuid4()),
                            due_at=now + timedelta(seconds=policy.steps[0].after), status="active", updated_at=now)
    session.add(state)
    session.flush()
    return state


def stop(session: Session, incident_id: int, reason: str, now: datetime) -> bool:
    result = session.execute(
        update(EscalationState)
        .where(EscalationState.incident_id == incident_id, EscalationState.status == "active")
        .values(status="stopped", stopped_reason=reason, token=str(uuid.uuid4()), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount > 0


def take_due(session: Session, now: datetime, redispatch_after: float, limit: int = 200) -> list[tuple[int, str]]:
    """Due steps to hand to workers, marked so the next sweep does not hand them out again
    while their task waits in the queue (unless it got lost)."""
    recently = and_(EscalationState.dispatched_at.is_not(None),
                    EscalationState.dispatched_at > now - timedelta(seconds=redispatch_after))
    rows = session.execute(select(EscalationState.id, EscalationState.incident_id, EscalationState.token)
                           .where(EscalationState.status == "active", EscalationState.due_at <= now, ~recently)
                           .order_by(EscalationState.due_at).limit(limit)).all()
    if rows:
        session.execute(update(EscalationState).where(EscalationState.id.in_([r[0] for r in rows]))
                        .values(dispatched_at=now).execution_options(synchronize_session=False))
    return [(r[1], r[2]) for r in rows]


def _stop_reason(session: Session, incident: Incident | None) -> str | None:
    if incident is None or incident.status == "resolved":
        return "resolved"
    if incident.status == "acknowledged":
        return "acknowledged"
    firing = session.scalars(select(Alert).where(Alert.incident_id == incident.id, Alert.state == "firing")).all()
    if not firing:
        return "resolved"
    if all(a.silenced or a.inhibited for a in firing):
        return "silenced"
    return None


def run_step(session: Session, cfg: AlertingConfig, incident_id: int, token: str,
             now: datetime) -> tuple[str, list[Notification]]:
    """Returns (outcome, new outbox rows). Outcomes: stale, not_due, stopped, notified, done."""
    state = session.scalars(select(EscalationState).where(EscalationState.incident_id == incident_id)
                            .with_for_update()).first()
    if state is None or state.status != "active" or state.token != token:
        return "stale", []
    if state.due_at and state.due_at > now:
        return "not_due", []
    incident = session.get(Incident, incident_id)
    reason = _stop_reason(session, incident)
    policy = cfg.escalation_policies.get(state.policy)
    if policy is None:
        reason = reason or "policy_removed"
    if reason:
        state.status, state.stopped_reason, state.token, state.updated_at = "stopped", reason, str(uuid.uuid4()), now
        return "stopped", []
    step = policy.steps[min(state.step, len(policy.steps) - 1)]
    rows = []
    for channel in step.channels:
        row = outbox.enqueue(session, key=f"incident:{incident_id}:{channel}:escalation:{state.cycle}.{state.step}",
                             channel=channel, kind="escalation", incident_id=incident_id, due_at=now, now=now,
                             payload={"step": state.step, "cycle": state.cycle, "policy": state.policy})
        if row is not None:
            rows.append(row)
    next_step, next_cycle = state.step + 1, state.cycle
    if next_step >= len(policy.steps):
        next_step, next_cycle = 0, state.cycle + 1
    new_token = str(uuid.uuid4())
    if next_cycle > policy.repeat:
        values = {"status": "done", "token": new_token, "due_at": None, "dispatched_at": None}
    else:
        values = {"step": next_step, "cycle": next_cycle, "token": new_token, "dispatched_at": None,
                  "due_at": now + timedelta(seconds=policy.steps[next_step].after)}
    # The token condition repeats the check in SQL: belt and braces on top of the row lock.
    result = session.execute(update(EscalationState)
                             .where(EscalationState.id == state.id, EscalationState.token == token)
                             .values(updated_at=now, **values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise RuntimeError("escalation state changed under its row lock")
    session.expire(state)
    return ("done" if values.get("status") == "done" else "notified"), rows
