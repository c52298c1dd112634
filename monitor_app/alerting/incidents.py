"""Correlation: alerts join incidents by their route's group labels, and incidents turn
into outbox rows.

`sync` is state-based and idempotent: it looks at an alert as it is now (firing or not,
silenced, inhibited, flapping) and makes incident membership and queued notifications
agree with it. Calling it twice changes nothing the second time.

- A new incident queues its first notification per channel due at once (group_wait, 0 by
  default), and starts escalation.
- An alert joining an open incident queues one follow-up per channel due at the end of the
  batch window, unless one is already waiting; that one will carry the new alert too.
- When the last member clears, pending follow-ups are superseded and a resolved
  notification is queued for channels that want one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor_app.alerting import escalation, inhibition, outbox, routing, silences
from monitor_app.alerting.config import AlertingConfig
from monitor_app.platform.vocabulary import SEVERITIES
from monitor_app.alerting.matchers import all_match
from monitor_app.store.models.alerting import Alert, Incident, Notification


class Batch:
    """One unit of work: active silences and firing alerts (for inhibition) loaded once."""

    def __init__(self, session: Session, cfg: AlertingConfig, now: datetime):
        self.session, self.cfg, self.now = session, cfg, now
        self.silences = silences.active(session, now)
        self._firing: dict[int, Alert] | None = None
        self.rows: list[Notification] = []

    def firing(self) -> dict[int, Alert]:
        if self._firing is None:
            alerts = self.session.scalars(select(Alert).where(Alert.state == "firing")) if self.cfg.inhibit_rules else []
            self._firing = {a.id: a for a in alerts}
        return self._firing

    def track(self, alert: Alert) -> None:
        if self._firing is None:
            return
        if alert.state == "firing":
            self._firing[alert.id] = alert
        else:
            self._firing.pop(alert.id, None)

    def queue(self, row: Notification | None) -> None:
        if row is not None:
            self.rows.append(row)


def open_incident_of(session: Session, alert: Alert) -> Incident | None:
    if alert.incident_id is None:
        return None
    incident = session.get(Incident, alert.incident_id)
    return incident if incident is not None and incident.status != "resolved" else None


def _muted(batch: Batch, alert: Alert) -> bool:
    alert.silenced = bool(silences.matching(batch.silences, alert.labels))
    # Only alerts some rule could mute pay for loading the firing set.
    rules = [r for r in batch.cfg.inhibit_rules if all_match(r.target_matchers, alert.labels)]
    alert.inhibited = bool(rules) and inhibition.is_inhibited(
        rules, alert.labels, [a.labels for a in batch.firing().values() if a.id != alert.id])
    return alert.silenced or alert.inhibited


def sync(batch: Batch, alert: Alert) -> None:
    session = batch.session
    muted = _muted(batch, alert)
    batch.track(alert)
    if alert.flapping:
        return
    incident = open_incident_of(session, alert)
    if alert.state == "firing" and not muted:
        if incident is None:
            _attach(batch, alert)
        elif alert.joined_at is None or (alert.starts_at and alert.joined_at < alert.starts_at):
            _join(batch, alert, incident)
    elif alert.state in ("resolved", "inactive") and incident is not None:
        maybe_resolve(batch, incident)
    elif alert.state == "firing" and muted and incident is not None:
        _stop_if_all_muted(batch, incident)


def after_transition(batch: Batch, alert: Alert, change: str) -> None:
    """Inhibition side effects: a firing source mutes its targets; a cleared one releases them."""
    rules = batch.cfg.inhibit_rules
    if not rules or not inhibition.is_source(rules, alert.labels):
        return
    for other in list(batch.firing().values()):
        if other.id == alert.id:
            continue
        if change == "fired" and not other.inhibited and any(inhibition.inhibits(r, alert.labels, other.labels) for r in rules):
            other.inhibited = True
            incident = open_incident_of(batch.session, other)
            if incident is not None:
                _stop_if_all_muted(batch, incident)
        elif change == "resolved" and other.inhibited:
            sync(batch, other)


def _stop_if_all_muted(batch: Batch, incident: Incident) -> None:
    firing = batch.session.scalars(select(Alert).where(Alert.incident_id == incident.id, Alert.state == "firing")).all()
    if firing and all(a.silenced or a.inhibited for a in firing):
        escalation.stop(batch.session, incident.id, "silenced", batch.now)


def _title(alert: Alert) -> str:
    return f"{alert.labels.get('alertname')} on {alert.labels.get('asset', 'host')}"[:500]


def _attach(batch: Batch, alert: Alert) -> None:
    session, now, cfg = batch.session, batch.now, batch.cfg
    decision = routing.decide(cfg, alert.labels)
    key = decision.group_key(alert.labels)
    incident = session.scalars(select(Incident).where(Incident.open_key == key).with_for_update()).first()
    if incident is not None:
        _join(batch, alert, incident)
        return
    incident = Incident(group_key=key, open_key=key, group_labels=decision.group_labels(alert.labels),
                        title=_title(alert), severity=alert.severity, status="open", route=decision.to_dict(),
                        opened_at=now, notify_seq=1, last_notified_at=now + timedelta(seconds=decision.group_wait))
    try:
        with session.begin_nested():
            session.add(incident)
    except IntegrityError:
        # Opened concurrently by another worker: join theirs.
        incident = session.scalars(select(Incident).where(Incident.open_key == key).with_for_update()).one()
        _join(batch, alert, incident)
        return
    alert.incident_id, alert.joined_at = incident.id, now
    due = now + timedelta(seconds=decision.group_wait)
    for channel in decision.channels:
        batch.queue(outbox.enqueue(session, key=f"incident:{incident.id}:{channel}:firing", channel=channel,
                                   kind="firing", incident_id=incident.id, due_at=due, now=now))
    if decision.escalation and decision.escalation in cfg.escalation_policies:
        escalation.start(session, incident, decision.escalation, cfg.escalation_policies[decision.escalation], now)


def _join(batch: Batch, alert: Alert, incident: Incident) -> None:
    session, now = batch.session, batch.now
    alert.incident_id, alert.joined_at = incident.id, now
    if SEVERITIES.index(alert.severity) > SEVERITIES.index(incident.severity):
        incident.severity = alert.severity
    route = incident.route or {}
    waiting = set(session.scalars(select(Notification.channel).where(
        Notification.incident_id == incident.id, Notification.status == "pending",
        Notification.kind.in_(("firing", "followup")))))
    channels = [c for c in route.get("channels", []) if c not in waiting]
    if not channels:
        return
    incident.notify_seq = (incident.notify_seq or 0) + 1
    window_start = incident.last_notified_at or incident.opened_at
    due = max(now, window_start + timedelta(seconds=route.get("group_interval", routing.DEFAULTS["group_interval"])))
    incident.last_notified_at = due
    for channel in channels:
        batch.queue(outbox.enqueue(session, key=f"incident:{incident.id}:{channel}:followup:{incident.notify_seq}",
                                   channel=channel, kind="followup", incident_id=incident.id, due_at=due, now=now))


def maybe_resolve(batch: Batch, incident: Incident, by: str | None = None) -> bool:
    session = batch.session
    members = session.scalars(select(Alert).where(Alert.incident_id == incident.id)).all()
    if by is None and any(a.state in ("firing", "pending") or a.flapping for a in members):
        return False
    resolve_incident(batch, incident, by)
    return True


def resolve_incident(batch: Batch, incident: Incident, by: str | None) -> None:
    session, now, cfg = batch.session, batch.now, batch.cfg
    incident.status, incident.resolved_at, incident.resolved_by, incident.open_key = "resolved", now, by, None
    session.execute(update(Notification)
                    .where(Notification.incident_id == incident.id, Notification.status == "pending",
                           Notification.kind.in_(("followup", "repeat")))
                    .values(status="superseded").execution_options(synchronize_session=False))
    escalation.stop(session, incident.id, "resolved", now)
    for channel in (incident.route or {}).get("channels", []):
        spec = cfg.channels.get(channel)
        if spec is not None and spec.send_resolved:
            batch.queue(outbox.enqueue(session, key=f"incident:{incident.id}:{channel}:resolved", channel=channel,
                                       kind="resolved", incident_id=incident.id, due_at=now, now=now))


def queue_repeats(batch: Batch) -> None:
    """Open, unacknowledged incidents re-notify every repeat_interval."""
    session, now = batch.session, batch.now
    for incident in session.scalars(select(Incident).where(Incident.status == "open")):
        interval = (incident.route or {}).get("repeat_interval", routing.DEFAULTS["repeat_interval"])
        last = incident.last_notified_at or incident.opened_at
        if not interval or (now - last).total_seconds() < interval:
            continue
        firing = session.scalars(select(Alert).where(Alert.incident_id == incident.id, Alert.state == "firing")).all()
        if not firing or all(a.silenced or a.inhibited for a in firing):
            continue
        incident.notify_seq = (incident.notify_seq or 0) + 1
        incident.last_notified_at = now
        for channel in (incident.route or {}).get("channels", []):
            batch.queue(outbox.enqueue(session, key=f"incident:{incident.id}:{channel}:repeat:{incident.notify_seq}",
                                       channel=channel, kind="repeat", incident_id=incident.id, due_at=now, now=now))
