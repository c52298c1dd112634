"""The audit trail: who did what to which target, and how it ended."""

from __future__ import annotations

from sqlalchemy.orm import Session

from monitor_app.store.models import AuditEntry

OUTCOMES = ("ok", "denied", "invalid", "error")


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    outcome: str = "ok",
    detail: dict | None = None,
    remote_addr: str | None = None,
) -> AuditEntry:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    entry = AuditEntry(actor=actor, action=action, target=target[:255], outcome=outcome,
                       detail=detail or {}, remote_addr=remote_addr)
    session.add(entry)
    return entry
