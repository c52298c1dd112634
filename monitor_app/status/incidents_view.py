"""The Incidents pages: the list (open first) and one incident with its timeline and notification log.

The timeline is assembled from the rows alerting already keeps rather than from a log of its
own: the incident (opened, acknowledged, resolved), its alerts (fired, resolved), the outbox rows
(each notification queued, escalations included) with their delivery attempts, and the
escalation state (why it stopped). Whatever those rows say is what happened, so the page cannot
drift from the engine. Text that came from monitored systems or receivers (titles, labels,
errors) is bounded here and escaped by the templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.alerting.matchers import Matcher
from monitor_app.platform.vocabulary import SEVERITIES
from monitor_app.store.models.alerting import (Alert, EscalationState, Incident, Notification,
                                               NotificationAttempt)

STATES = ("active", "open", "acknowledged", "resolved")
PAGE_SIZE = 50
MAX_TEXT = 500
MAX_ROWS = 500
NOTIFY_KINDS = {"firing": "notified", "followup": "notified (follow-up)", "repeat": "notified again (repeat)",
                "escalation": "escalated", "resolved": "resolution notice queued", "summary": "summary queued",
                "test": "test notification queued"}


def bounded(text: object, limit: int = MAX_TEXT) -> str:
    value = text if isinstance(text, str) else ("" if text is None else str(text))
    return value if len(value) <= limit else value[:limit - 1] + "…"


@dataclass(frozen=True)
class IncidentQuery:
    state: str | None = None
    severity: str | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "IncidentQuery":
        state, severity, page = args.get("state"), args.get("severity"), args.get("page", "1")
        return cls(state=state if state in STATES else None, severity=severity if severity in SEVERITIES else None,
                   page=int(page) if isinstance(page, str) and page.isdigit() and 0 < len(page) < 7 else 1)


@dataclass
class IncidentList:
    incidents: list[Incident]
    total: int
    query: IncidentQuery
    pages: int


def list_incidents(session: Session, query: IncidentQuery, page_size: int = PAGE_SIZE) -> IncidentList:
    """Open first, then acknowledged, then resolved; newest first within each."""
    stmt = select(Incident)
    if query.state == "active":
        stmt = stmt.where(Incident.status.in_(("open", "acknowledged")))
    elif query.state:
        stmt = stmt.where(Incident.status == query.state)
    if query.severity:
        stmt = stmt.where(Incident.severity == query.severity)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    order = case((Incident.status == "open", 0), (Incident.status == "acknowledged", 1), else_=2)
    rows = session.scalars(stmt.order_by(order, Incident.id.desc())
                           .offset((query.page - 1) * page_size).limit(page_size)).all()
    return IncidentList(list(rows), total, query, max(1, -(-total // page_size)))


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # fired | notified | escalated | delivery | acknowledged | escalation | resolved
    text: str
    outcome: str = ""


@dataclass
class NotificationView:
    id: int
    channel: str
    kind: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str
    log: list[NotificationAttempt] = field(default_factory=list)


@dataclass
class IncidentDetail:
    incident: Incident
    group_labels: dict
    alerts: list[dict]
    timeline: list[TimelineEntry]
    notifications: list[NotificationView]
    escalation: EscalationState | None
    silence_matchers: list[str]


def _alert_entries(alert: Alert, labels: dict) -> list[TimelineEntry]:
    subject = bounded(f"{alert.rule}" + (f" on {labels['asset']}" if labels.get("asset") else ""))
    out = []
    if alert.starts_at:
        out.append(TimelineEntry(alert.starts_at, "fired", f"Alert {subject} fired"))
    if alert.resolved_at:
        by = f" by {bounded(alert.resolved_by, 128)}" if alert.resolved_by else ""
        out.append(TimelineEntry(alert.resolved_at, "resolved", f"Alert {subject} resolved{by}"))
    return out


def _notification_entries(n: Notification, attempts: list[NotificationAttempt]) -> list[TimelineEntry]:
    payload = n.payload if isinstance(n.payload, dict) else {}
    what = NOTIFY_KINDS.get(n.kind, n.kind)
    if n.kind == "escalation":
        what += f" (policy {bounded(payload.get('policy'), 128)}, step {payload.get('step', '?')}," \
                f" cycle {payload.get('cycle', '?')})"
    out = [TimelineEntry(n.created_at, "escalated" if n.kind == "escalation" else "notified",
                         f"{what.capitalize()} via {bounded(n.channel, 128)}")]
    for a in attempts:
        detail = f": {bounded(a.detail, 200)}" if a.detail and a.outcome != "sent" else ""
        out.append(TimelineEntry(a.at, "delivery", f"Delivery to {bounded(n.channel, 128)} {a.outcome}{detail}",
                                 a.outcome))
    return out


def _timeline(incident: Incident, alerts: list[tuple[Alert, dict]],
              notifications: list[tuple[Notification, list[NotificationAttempt]]],
              escalation: EscalationState | None) -> list[TimelineEntry]:
    entries = [TimelineEntry(incident.opened_at, "fired", f"Incident opened: {bounded(incident.title)}")]
    for alert, labels in alerts:
        entries += _alert_entries(alert, labels)
    for row, attempts in notifications:
        entries += _notification_entries(row, attempts)
    if incident.acknowledged_at:
        entries.append(TimelineEntry(incident.acknowledged_at, "acknowledged",
                                     f"Acknowledged by {bounded(incident.acknowledged_by or 'unknown', 128)}"))
    if escalation is not None and escalation.status != "active":
        why = escalation.stopped_reason or escalation.status
        entries.append(TimelineEntry(escalation.updated_at, "escalation",
                                     f"Escalation ({bounded(escalation.policy, 128)}) stopped: {why}"
                                     if escalation.status == "stopped" else
                                     f"Escalation ({bounded(escalation.policy, 128)}) done: every step ran"))
    if incident.resolved_at:
        by = f" by {bounded(incident.resolved_by, 128)}" if incident.resolved_by else ""
        entries.append(TimelineEntry(incident.resolved_at, "resolved", f"Incident resolved{by}"))
    return sorted(entries, key=lambda e: e.at)[:MAX_ROWS]


def incident_detail(session: Session, incident_id: int, redactor: LabelRedactor) -> IncidentDetail | None:
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    alerts = session.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id)
                             .limit(MAX_ROWS)).all()
    labelled = [(a, redactor.labels(a.labels) if isinstance(a.labels, dict) else {}) for a in alerts]
    rows = session.scalars(select(Notification).where(Notification.incident_id == incident_id)
                           .order_by(Notification.id).limit(MAX_ROWS)).all()
    attempts = session.scalars(select(NotificationAttempt).where(NotificationAttempt.incident_id == incident_id)
                               .order_by(NotificationAttempt.id).limit(MAX_ROWS * 4)).all()
    by_row: dict[int, list[NotificationAttempt]] = {}
    for a in attempts:
        by_row.setdefault(a.notification_id, []).append(a)
    views = [NotificationView(id=n.id, channel=n.channel, kind=n.kind, status=n.status, attempts=n.attempts,
                              created_at=n.created_at, sent_at=n.sent_at, last_error=bounded(n.last_error),
                              log=by_row.get(n.id, [])) for n in rows]
    escalation = session.scalar(select(EscalationState).where(EscalationState.incident_id == incident_id))
    group = incident.group_labels if isinstance(incident.group_labels, dict) else {}
    return IncidentDetail(
        incident=incident, group_labels=redactor.labels(group),
        alerts=[{"alert": a, "labels": labels, "summary": bounded((a.annotations or {}).get("summary", ""))
                 if isinstance(a.annotations, dict) else ""} for a, labels in labelled],
        timeline=_timeline(incident, labelled, [(n, by_row.get(n.id, [])) for n in rows], escalation),
        notifications=views, escalation=escalation,
        silence_matchers=silence_matchers(group, redactor))


def silence_matchers(group_labels: dict, redactor: LabelRedactor) -> list[str]:
    """The incident's group labels as matchers, to prefill the silence form; hidden labels are left
    out (their values must not reach the page), and so is anything a matcher cannot hold."""
    out = []
    for name, value in sorted(group_labels.items()):
        if redactor.hides(str(name)) or not isinstance(value, (str, int, float)):
            continue
        try:
            out.append(str(Matcher(str(name), "=", str(value))))
        except ValueError:
            continue
    return out
