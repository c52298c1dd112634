"""What a notification says, built when it is sent (not when it is queued), so a
follow-up carries every alert that joined during its batch window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor_app.alerting import ack_links
from monitor_app.alerting.config import AlertingConfig
from monitor_app.access.secret_keys import KeyRing
from monitor_app.store.models.alerting import Alert, Incident, Notification

TITLES = {"firing": "FIRING", "followup": "FIRING", "repeat": "STILL FIRING", "escalation": "ESCALATED",
          "resolved": "RESOLVED", "summary": "SUMMARY", "test": "TEST"}


def alert_view(alert: Alert) -> dict:
    status = "firing" if alert.state == "firing" else "resolved"
    return {"id": alert.id, "fingerprint": alert.fingerprint, "status": status, "state": alert.state,
            "labels": dict(alert.labels or {}), "annotations": dict(alert.annotations or {}),
            "severity": alert.severity, "value": alert.value, "starts_at": alert.starts_at,
            "ends_at": alert.resolved_at if status == "resolved" else None,
            "silenced": alert.silenced, "inhibited": alert.inhibited}


def incident_view(incident: Incident) -> dict:
    return {"id": incident.id, "title": incident.title, "severity": incident.severity, "status": incident.status,
            "group_key": incident.group_key, "group_labels": dict(incident.group_labels or {}),
            "opened_at": incident.opened_at, "acknowledged_at": incident.acknowledged_at,
            "acknowledged_by": incident.acknowledged_by, "resolved_at": incident.resolved_at,
            "resolved_by": incident.resolved_by}


def _common(dicts: list[dict]) -> dict:
    if not dicts:
        return {}
    common = dict(dicts[0])
    for d in dicts[1:]:
        common = {k: v for k, v in common.items() if d.get(k) == v}
    return common


def _claim_suppressed(session: Session, row: Notification) -> list[dict]:
    """Attach every not-yet-summarised suppressed row of this channel to this summary."""
    session.execute(update(Notification)
                    .where(Notification.channel == row.channel, Notification.status == "suppressed",
                           Notification.summary_id.is_(None))
                    .values(summary_id=row.id).execution_options(synchronize_session=False))
    rows = session.execute(select(Notification, Incident).outerjoin(Incident, Incident.id == Notification.incident_id)
                           .where(Notification.summary_id == row.id).order_by(Notification.id)).all()
    return [{"kind": n.kind, "key": n.idempotency_key, "created_at": n.created_at,
             "incident": incident_view(i) if i is not None else None} for n, i in rows]

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"


def build(session: Session, row: Notification, cfg: AlertingConfig, secret_key: KeyRing | str, now: datetime) -> dict:
    incident = session.get(Incident, row.incident_id) if row.incident_id else None
    # A runtime's engine always has one (see service.alert_operations_for); an engine built bare has the default API.
    public_url = cfg.public_url or DEFAULT_PUBLIC_URL
    alerts: list[Alert] = []
    if incident is not None:
        alerts = list(session.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.id)))
    if row.kind != "resolved":
        alerts = [a for a in alerts if not (a.silenced or a.inhibited)]
    views = [alert_view(a) for a in alerts]
    if row.kind == "test":
        views = [{"id": 0, "fingerprint": "test", "status": "firing", "state": "firing",
                  "labels": {"alertname": "DbmonTestNotification", "severity": "info", "channel": row.channel},
                  "annotations": {"summary": f"Test notification for channel {row.channel}"}, "severity": "info",
                  "value": None, "starts_at": now, "ends_at": None, "silenced": False, "inhibited": False}]
    firing = [v for v in views if v["status"] == "firing"]
    resolved = [v for v in views if v["status"] == "resolved"]
    new = [alert_view(a) for a in alerts if row.kind == "followup" and a.joined_at and a.joined_at >= row.created_at
           and a.state == "firing"]
    status = "resolved" if row.kind == "resolved" or (incident is not None and not firing) else "firing"
    context = {
        "kind": row.kind, "status": status, "heading": TITLES.get(row.kind, row.kind.upper()),
        "channel": row.channel, "idempotency_key": row.idempotency_key, "notification_id": row.id,
        "incident": incident_view(incident) if incident else None,
        "alerts": views, "firing": firing, "resolved": resolved, "new_alerts": new,
        "group_labels": dict(incident.group_labels or {}) if incident else {},
        "common_labels": _common([v["labels"] for v in views]),
        "common_annotations": _common([v["annotations"] for v in views]),
        "external_url": public_url.rstrip("/"),
        "ack_url": (ack_links.ack_url(public_url, secret_key, incident.id)
                    if incident is not None and incident.status == "open" and row.kind != "resolved" else None),
        "escalation": row.payload if row.kind == "escalation" else None,
        "suppressed": _claim_suppressed(session, row) if row.kind == "summary" else [],
        "now": now,
    }
    return context
