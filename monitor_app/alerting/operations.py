"""The alerting facade the tasks, API and CLI call. Every method is one short unit of work
that takes ids, reads the clock once, and returns the ids of outbox rows due now, so the
caller can dispatch their delivery immediately; everything due later is found by `sweep`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, select, true

from monitor_app.alerting import escalation, incidents, inhibition, outbox, ratelimit, silences, state
from monitor_app.alerting.channels import driver_for
from monitor_app.alerting.channels.base import DeliveryError
from monitor_app.alerting.config import AlertingConfig, EventRule, ThresholdRule
from monitor_app.alerting.messages import build as build_message
from monitor_app.alerting.rules import Signal, events_signals, live_assets, load_rules, metric_signals
from monitor_app.alerting.series_rules import SERIES_RULES, series_rule_signals
from monitor_app.alerting.templates import TemplateRenderer
from monitor_app.errors import DbmonError, NotFound
from monitor_app.access.secret_keys import KeyRing
from monitor_app.platform import own_metrics
from monitor_app.store.base import Store, utcnow
from monitor_app.store.models.alerting import Alert, AlertingCursor, Incident, Notification
from monitor_app.store.models.core import Event


@dataclass
class Outcome:
    deliver: list[int] = field(default_factory=list)
    escalate: list[tuple[int, str]] = field(default_factory=list)
    signals: int = 0
    fired: int = 0
    resolved: int = 0

    def as_dict(self) -> dict:
        return {"deliver": self.deliver, "escalate": [list(e) for e in self.escalate], "signals": self.signals,
                "fired": self.fired, "resolved": self.resolved}


class AlertOperations:
    def __init__(self, store: Store, config: AlertingConfig, secret_key: KeyRing | str,
                 clock: Callable[[], datetime] = utcnow):
        self.store, self.cfg, self.secret_key, self.clock = store, config, secret_key, clock
        self.renderer = TemplateRenderer(config.template_dir)

    # -- evaluation -------------------------------------------------------------------------

    def _process(self, batch: incidents.Batch, signals: list[Signal], outcome: Outcome) -> None:
        rules = self.cfg.inhibit_rules
        # Inhibition sources first, so an asset-down in the same batch mutes its targets before they page.
        signals.sort(key=lambda s: 0 if rules and inhibition.is_source(rules, s.labels) else 1)
        outcome.signals += len(signals)
        locked = state.lock_all(batch.session, {s.fingerprint for s in signals})
        for signal in signals:
            alert, change = state.apply(batch.session, signal, batch.now, self.cfg.flap, locked)
            if alert is None or change is None:
                continue  # a repeat of what is already known: deduplicated here
            outcome.fired += change == "fired"
            outcome.resolved += change == "resolved"
            incidents.sync(batch, alert)
            incidents.after_transition(batch, alert, change)

    def _finish(self, batch: incidents.Batch, outcome: Outcome) -> Outcome:
        batch.session.flush()
        outcome.deliver += [r.id for r in batch.rows if r.next_attempt_at <= batch.now]
        return outcome

    def evaluate_events(self, event_ids: list[int]) -> Outcome:
        outcome = Outcome()
        with self.store.session() as session:
            now = self.clock()
            batch = incidents.Batch(session, self.cfg, now)
            signals = events_signals(session, load_rules(session, self.cfg.rules), list(event_ids))
            self._process(batch, signals, outcome)
            return self._finish(batch, outcome)

    def catch_up_events(self, grace: float = 5.0, limit: int = 1000) -> Outcome:
        """Evaluate events the after-commit hook may have missed (a process died between
        commit and dispatch). Re-evaluating an event is a no-op, so overlap is harmless;
        `grace` leaves transactions still in flight to the hook."""
        outcome = Outcome()
        with self.store.session() as session:
            now = self.clock()
            cursor = session.scalars(select(AlertingCursor).where(AlertingCursor.name == "events")
                                     .with_for_update()).first()
            if cursor is None:
                # First run: start from recent history rather than re-alerting on years of events.
                start = session.scalar(select(func.max(Event.id)).where(
                    Event.detected_at < now - timedelta(minutes=10))) or 0
                cursor = AlertingCursor(name="events", position=start, updated_at=now)
                session.add(cursor)
            ids = list(session.scalars(select(Event.id).where(Event.id > cursor.position,
                                                              Event.detected_at <= now - timedelta(seconds=grace))
                                       .order_by(Event.id).limit(limit)))
            if not ids:
                return outcome
            batch = incidents.Batch(session, self.cfg, now)
            self._process(batch, events_signals(session, load_rules(session, self.cfg.rules), ids), outcome)
            cursor.position, cursor.updated_at = ids[-1], now
            return self._finish(batch, outcome)

    def evaluate_metrics(self) -> Outcome:
        outcome = Outcome()
        with self.store.session() as session:
            now = self.clock()
            batch = incidents.Batch(session, self.cfg, now)
            rules = [r for r in load_rules(session, self.cfg.rules) if isinstance(r, (ThresholdRule, *SERIES_RULES))]
            assets = live_assets(session) if rules else {}
            signals = metric_signals(session, rules, now, assets)
            series_rules = [r for r in rules if isinstance(r, SERIES_RULES)]
            if series_rules:
                active = set(session.scalars(select(Alert.fingerprint).where(
                    Alert.rule.in_([r.name for r in series_rules]), Alert.state.in_(state.ACTIVE))))
                signals += series_rule_signals(session, series_rules, now, assets, active)
            self._process(batch, signals, outcome)
            # A series that stopped reporting clears its alert rather than firing forever.
            seen = {s.fingerprint for s in signals}
            names = [r.name for r in rules]
            if names:
                stale = session.scalars(select(Alert).where(Alert.rule.in_(names), Alert.state.in_(state.ACTIVE),
                                                            Alert.fingerprint.not_in(seen) if seen else true()))
                for alert in stale.all():
                    self._clear(batch, alert, outcome)
            return self._finish(batch, outcome)

    def _clear(self, batch: incidents.Batch, alert: Alert, outcome: Outcome, by: str | None = None) -> None:
        change = state.clear(alert, batch.now, self.cfg.flap, by=by)
        if change:
            outcome.resolved += 1
            incidents.sync(batch, alert)
            incidents.after_transition(batch, alert, change)

    # -- time-driven work -------------------------------------------------------------------

    def sweep(self) -> Outcome:
        """Everything that happens because time passed: config silences, expired silences,
        flap holds ending, event alerts timing out, repeats; then what is due to send or escalate."""
        outcome = Outcome()
        with self.store.session() as session:
            now = self.clock()
            silences.sync_config(session, self.cfg.silences, now)
            batch = incidents.Batch(session, self.cfg, now)
            for alert in session.scalars(select(Alert).where(Alert.flapping.is_(True))).all():
                if state.release_flapping(alert, now, self.cfg.flap):
                    incidents.sync(batch, alert)
            session.scalars(select(Incident).where(Incident.status != "resolved")).all()  # one query, then cached
            rules = load_rules(session, self.cfg.rules)
            known = {r.name for r in rules}
            for alert in session.scalars(select(Alert).where(Alert.state.in_(state.ACTIVE))).all():
                if alert.rule not in known:
                    self._clear(batch, alert, outcome, by="rule removed")
                elif alert.state == "firing":
                    incidents.sync(batch, alert)  # silences that started or ended since the last look
            timeouts = {r.name: r.resolve_after for r in rules if isinstance(r, EventRule) and r.resolve_after}
            for name, after in timeouts.items():
                for alert in session.scalars(select(Alert).where(
                        Alert.rule == name, Alert.state == "firing",
                        Alert.last_seen_at <= now - timedelta(seconds=after))).all():
                    self._clear(batch, alert, outcome)
            incidents.queue_repeats(batch)
            session.flush()
            created = [r.id for r in batch.rows if r.next_attempt_at <= now]
            outcome.deliver = created + [i for i in outbox.take_due(session, now, self.cfg.outbox.redispatch_after)
                                         if i not in created]
            outcome.escalate = escalation.take_due(session, now, self.cfg.outbox.redispatch_after)
        return outcome

    def escalate(self, incident_id: int, token: str) -> dict:
        with self.store.session() as session:
            now = self.clock()
            result, rows = escalation.run_step(session, self.cfg, incident_id, token, now)
            session.flush()
            return {"outcome": result, "deliver": [r.id for r in rows]}

    # -- delivery ---------------------------------------------------------------------------

    def deliver(self, notification_id: int) -> dict:
        with self.store.session() as session:
            now = self.clock()
            row = outbox.claim(session, notification_id, now, self.cfg.outbox.lease)
            if row is None:
                return {"outcome": "skipped"}
            spec = self.cfg.channels.get(row.channel)
            if spec is None:
                outbox.mark_failed_attempt(session, row, row.attempts, now, f"channel {row.channel!r} is not configured",
                                           self.cfg.outbox, permanent=True)
                own_metrics.notification_outcome("unconfigured", "failed")
                return {"outcome": "failed"}
            if spec.rate_limit and row.kind not in ("summary", "test"):
                decision = ratelimit.take(session, row.channel, spec.rate_limit, now)
                if not decision.allowed:
                    own_metrics.notification_outcome(spec.type, "suppressed")
                    return self._suppress(session, row, decision.next_token_at, now)
            attempts = row.attempts
            try:
                context = build_message(session, row, self.cfg, self.secret_key, now)
            except DbmonError as exc:
                outbox.mark_failed_attempt(session, row, attempts, now, exc.message, self.cfg.outbox, permanent=True)
                own_metrics.notification_outcome(spec.type, "failed")
                return {"outcome": "failed", "error": exc.message}
        started = time.perf_counter()
        try:
            detail, error = driver_for(row.channel, spec).send(self.renderer, context), None
        except DeliveryError as exc:
            detail, error = None, exc
        except DbmonError as exc:  # template errors: the same message will fail again
            detail, error = None, DeliveryError(exc.message, permanent=True)
        except Exception as exc:  # a driver bug must not lose the row: retry and log it
            detail, error = None, DeliveryError(f"{exc.__class__.__name__}: {exc}")
        elapsed_ms = (time.perf_counter() - started) * 1000
        with self.store.session() as session:
            now = self.clock()
            if error is not None:
                result = outbox.mark_failed_attempt(session, row, attempts, now, error.message, self.cfg.outbox,
                                                    permanent=error.permanent, retry_after=error.retry_after,
                                                    duration_ms=elapsed_ms)
                own_metrics.notification_outcome(spec.type, "failed")
                return {"outcome": result, "error": error.message}
            outbox.mark_sent(session, row, attempts, now, detail, elapsed_ms)
        own_metrics.notification_outcome(spec.type, "sent")
        own_metrics.notification_delivered(self.store, row, spec.type, now)  # committed: reads in its own session
        return {"outcome": "sent", "detail": detail}

    def _suppress(self, session, row: Notification, next_token_at: datetime, now: datetime) -> dict:
        row.status, row.lease_until = "suppressed", None
        outbox.log(session, row, "suppressed", "rate limit reached; will be summarised", now)
        waiting = session.scalar(select(Notification.id).where(Notification.channel == row.channel,
                                                                Notification.kind == "summary",
                                                                Notification.status == "pending"))
        if waiting is None:
            summary = outbox.enqueue(session, key=f"summary:{row.channel}:{row.id}", channel=row.channel,
                                     kind="summary", incident_id=None, due_at=next_token_at, now=now)
            waiting = summary.id if summary is not None else None
        return {"outcome": "suppressed", "summary": waiting}

    def deliver_due_now(self, ids: list[int]) -> list[dict]:
        """Deliver in this process (CLI test-send, tests); workers use the `alerts.deliver` task."""
        return [self.deliver(i) for i in ids]

    # -- operator actions -------------------------------------------------------------------

    def _incident(self, session, incident_id: int, lock: bool = True) -> Incident:
        query = select(Incident).where(Incident.id == incident_id)
        incident = session.scalars(query.with_for_update() if lock else query).first()
        if incident is None:
            raise NotFound(f"no incident {incident_id}", field="incident_id")
        return incident

    def acknowledge(self, incident_id: int, actor: str) -> dict:
        with self.store.session() as session:
            now = self.clock()
            incident = self._incident(session, incident_id)
            if incident.status == "open":
                incident.status, incident.acknowledged_at, incident.acknowledged_by = "acknowledged", now, actor
                escalation.stop(session, incident.id, "acknowledged", now)
            return {"id": incident.id, "status": incident.status, "acknowledged_by": incident.acknowledged_by}

    def resolve(self, incident_id: int, actor: str) -> Outcome:
        outcome = Outcome()
        with self.store.session() as session:
            now = self.clock()
            incident = self._incident(session, incident_id)
            if incident.status == "resolved":
                return outcome
            batch = incidents.Batch(session, self.cfg, now)
            for alert in session.scalars(select(Alert).where(Alert.incident_id == incident.id,
                                                             Alert.state.in_(state.ACTIVE))).all():
                state.clear(alert, now, self.cfg.flap, by=actor)
                alert.flapping = False
                batch.track(alert)
                outcome.resolved += 1
            incidents.resolve_incident(batch, incident, actor)
            return self._finish(batch, outcome)

    def add_silence(self, *, matchers, ends_at: datetime, created_by: str, comment: str = "",
                    starts_at: datetime | None = None) -> dict:
        with self.store.session() as session:
            now = self.clock()
            row = silences.create(session, matchers=matchers, ends_at=ends_at, created_by=created_by,
                                  comment=comment, starts_at=starts_at, now=now)
            batch = incidents.Batch(session, self.cfg, now)
            for alert in session.scalars(select(Alert).where(Alert.state == "firing")).all():
                incidents.sync(batch, alert)  # stops escalation of incidents now fully silenced
            return {"id": row.id, "matchers": row.matchers, "starts_at": row.starts_at, "ends_at": row.ends_at}

    def expire_silence(self, silence_id: int) -> Outcome:
        outcome = Outcome()
        with self.store.session() as session:
            now = self.clock()
            silences.expire(session, silence_id, now)
            session.flush()
            batch = incidents.Batch(session, self.cfg, now)
            for alert in session.scalars(select(Alert).where(Alert.state == "firing", Alert.silenced.is_(True))).all():
                incidents.sync(batch, alert)
            return self._finish(batch, outcome)

    def test_send(self, channel: str) -> int:
        if channel not in self.cfg.channels:
            raise NotFound(f"no channel named {channel!r}", field="channel")
        with self.store.session() as session:
            now = self.clock()
            row = outbox.enqueue(session, key=f"test:{channel}:{uuid.uuid4()}", channel=channel, kind="test",
                                 incident_id=None, due_at=now, now=now)
            session.flush()
            return row.id
