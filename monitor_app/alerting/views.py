"""Alerting rows as plain JSON-able dicts, for the API and the CLI."""

from __future__ import annotations

from datetime import datetime

from monitor_app.store.base import iso


def alert_dict(a) -> dict:
    return {"id": a.id, "fingerprint": a.fingerprint, "rule": a.rule, "state": a.state, "severity": a.severity,
            "labels": a.labels, "annotations": a.annotations, "value": a.value, "asset_id": a.asset_id,
            "starts_at": iso(a.starts_at), "last_seen_at": iso(a.last_seen_at), "resolved_at": iso(a.resolved_at),
            "resolved_by": a.resolved_by, "fire_count": a.fire_count, "flapping": a.flapping,
            "silenced": a.silenced, "inhibited": a.inhibited, "incident_id": a.incident_id}


def incident_dict(i) -> dict:
    return {"id": i.id, "title": i.title, "severity": i.severity, "status": i.status,
            "group_labels": i.group_labels, "channels": (i.route or {}).get("channels", []),
            "escalation": (i.route or {}).get("escalation"), "opened_at": iso(i.opened_at),
            "acknowledged_at": iso(i.acknowledged_at), "acknowledged_by": i.acknowledged_by,
            "resolved_at": iso(i.resolved_at), "resolved_by": i.resolved_by}


def attempt_dict(a) -> dict:
    return {"at": iso(a.at), "outcome": a.outcome, "detail": a.detail, "duration_ms": a.duration_ms}


def notification_dict(n, attempts=()) -> dict:
    return {"id": n.id, "incident_id": n.incident_id, "channel": n.channel, "kind": n.kind, "status": n.status,
            "idempotency_key": n.idempotency_key, "attempts": n.attempts, "created_at": iso(n.created_at),
            "next_attempt_at": iso(n.next_attempt_at) if n.status == "pending" else None,
            "sent_at": iso(n.sent_at), "last_error": n.last_error, "summary_id": n.summary_id,
            "log": [attempt_dict(a) for a in attempts]}


def silence_dict(s, now: datetime) -> dict:
    state = "pending" if s.starts_at > now else ("expired" if s.ends_at <= now else "active")
    return {"id": s.id, "matchers": s.matchers, "starts_at": iso(s.starts_at), "ends_at": iso(s.ends_at),
            "created_by": s.created_by, "comment": s.comment, "source": s.source, "state": state}
