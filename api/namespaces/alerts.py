"""Alerts, incidents, silences, rules, channel test sends and signed acknowledge links."""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from html import escape

from flask import Response, request
from flask_restx import Namespace, Resource, abort, fields
from sqlalchemy import select

from api.audit_trail import mark_recorded
from api.auth import require_role
from api.context import actor, runtime
from api.json_body import json_object
from api.query import paged_parser, paginate, row_id, timestamp
from api.serializers import redact
from api.silence_request import read_silence
from monitor_app.access import audit
from monitor_app.access import anonymous_audit
from monitor_app.alerting import ack_links, ratelimit
from monitor_app.alerting.config import RateLimit, load_rule
from monitor_app.platform.vocabulary import SEVERITIES
from monitor_app.alerting.service import dispatch_deliveries, alert_operations_for
from monitor_app.alerting import views
from monitor_app.alerting.views import notification_dict, silence_dict
from monitor_app.errors import ConfigError, DbmonError
from monitor_app.store.base import utcnow
from monitor_app.store.models.alerting import (Alert, AlertRuleRow, Incident, Notification, NotificationAttempt,
                                               Silence)


def alert_dict(a) -> dict:
    return redact(views.alert_dict(a))  # alert labels carry the asset's labels


def incident_dict(i) -> dict:
    return redact(views.incident_dict(i))


ns = Namespace("alerts", description="Alerts, incidents, silences and notification delivery")

alert_args = paged_parser()
alert_args.add_argument("state", choices=("pending", "firing", "resolved", "inactive"), location="args")
alert_args.add_argument("severity", choices=SEVERITIES, location="args")
alert_args.add_argument("rule", location="args")
alert_args.add_argument("asset_id", type=row_id, location="args")
alert_args.add_argument("incident_id", type=row_id, location="args")

incident_args = paged_parser()
incident_args.add_argument("status", choices=("open", "acknowledged", "resolved", "active"), location="args",
                           help="'active' means open or acknowledged")
incident_args.add_argument("severity", choices=SEVERITIES, location="args")
incident_args.add_argument("since", type=timestamp, location="args")

silence_args = paged_parser()
silence_args.add_argument("state", choices=("active", "pending", "expired", "all"), default="active", location="args")

silence_body = ns.model("SilenceRequest", {
    "matchers": fields.List(fields.String, required=True, description='e.g. ["asset=orders", "alertname=~Disk.*"]'),
    "ends_at": fields.DateTime(description="end (ISO 8601); or give duration"),
    "duration": fields.String(description="e.g. 2h, 30m"),
    "starts_at": fields.DateTime(description="start (default now)"),
    "comment": fields.String(default=""),
})


def _audit(action: str, target: str, outcome: str = "ok", detail: dict | None = None) -> None:
    with runtime().store.session() as s:
        audit.record(s, actor=actor(), action=action, target=target, outcome=outcome, detail=detail or {},
                     remote_addr=request.remote_addr)
    mark_recorded()


@ns.route("/alerts")
class AlertList(Resource):
    @ns.expect(alert_args)
    @require_role("viewer")
    def get(self):
        """Alerts, most recently seen first."""
        args = alert_args.parse_args()
        query = select(Alert)
        for column, value in ((Alert.state, args.state), (Alert.severity, args.severity), (Alert.rule, args.rule),
                              (Alert.asset_id, args.asset_id), (Alert.incident_id, args.incident_id)):
            if value is not None:
                query = query.where(column == value)
        with runtime().store.session() as s:
            return paginate(s, query, Alert.last_seen_at.desc(), args, alert_dict)


@ns.route("/incidents")
class IncidentList(Resource):
    @ns.expect(incident_args)
    @require_role("viewer")
    def get(self):
        """Incidents, newest first."""
        args = incident_args.parse_args()
        query = select(Incident)
        if args.status == "active":
            query = query.where(Incident.status.in_(("open", "acknowledged")))
        elif args.status:
            query = query.where(Incident.status == args.status)
        if args.severity:
            query = query.where(Incident.severity == args.severity)
        if args.since:
            query = query.where(Incident.opened_at >= args.since)
        with runtime().store.session() as s:
            return paginate(s, query, Incident.id.desc(), args, incident_dict)


@ns.route("/incidents/<int:incident_id>")
class IncidentItem(Resource):
    @require_role("viewer")
    def get(self, incident_id: int):
        """One incident with its alerts."""
        with runtime().store.session() as s:
            incident = s.get(Incident, incident_id)
            if incident is None:
                abort(404, f"no incident {incident_id}")
            alerts = s.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id)).all()
            return {**incident_dict(incident), "alerts": [alert_dict(a) for a in alerts]}


@ns.route("/incidents/<int:incident_id>/acknowledge")
class IncidentAck(Resource):
    @require_role("operator")
    def post(self, incident_id: int):
        """Acknowledge: escalation stops; the incident stays open until it resolves."""
        result = alert_operations_for(runtime()).acknowledge(incident_id, actor())
        _audit("incident.acknowledge", f"incident:{incident_id}", detail=result)
        return result


@ns.route("/incidents/<int:incident_id>/resolve")
class IncidentResolve(Resource):
    @require_role("operator")
    def post(self, incident_id: int):
        """Resolve by hand: its alerts clear and resolved notifications go out."""
        rt = runtime()
        outcome = alert_operations_for(rt).resolve(incident_id, actor())
        dispatch_deliveries(rt, outcome.deliver)
        _audit("incident.resolve", f"incident:{incident_id}", detail={"alerts_resolved": outcome.resolved})
        with rt.store.session() as s:
            return incident_dict(s.get(Incident, incident_id))


@ns.route("/incidents/<int:incident_id>/notifications")
class IncidentNotifications(Resource):
    @require_role("viewer")
    def get(self, incident_id: int):
        """The notification log: each queued notification and every delivery attempt."""
        with runtime().store.session() as s:
            if s.get(Incident, incident_id) is None:
                abort(404, f"no incident {incident_id}")
            rows = s.scalars(select(Notification).where(Notification.incident_id == incident_id)
                             .order_by(Notification.id)).all()
            attempts = s.scalars(select(NotificationAttempt).where(NotificationAttempt.incident_id == incident_id)
                                 .order_by(NotificationAttempt.id)).all()
            by_row: dict[int, list] = {}
            for a in attempts:
                by_row.setdefault(a.notification_id, []).append(a)
            return {"items": [notification_dict(n, by_row.get(n.id, [])) for n in rows]}


@ns.route("/silences")
class SilenceList(Resource):
    @ns.expect(silence_args)
    @require_role("viewer")
    def get(self):
        """Silences; by default only those in force now."""
        args = silence_args.parse_args()
        now = utcnow()
        query = select(Silence)
        if args.state == "active":
            query = query.where(Silence.starts_at <= now, Silence.ends_at > now)
        elif args.state == "pending":
            query = query.where(Silence.starts_at > now)
        elif args.state == "expired":
            query = query.where(Silence.ends_at <= now)
        with runtime().store.session() as s:
            return paginate(s, query, Silence.id.desc(), args, lambda row: silence_dict(row, now))

    @ns.expect(silence_body)
    @ns.response(201, "created")
    @require_role("operator")
    def post(self):
        """Create a silence from matchers and an end time (or a duration)."""
        rt = runtime()
        try:
            wanted = read_silence(json_object(), utcnow(), timedelta(days=rt.settings.silence_max_days))
        except ConfigError as exc:
            _audit("silence.create", "silence", "invalid", {"errors": dict(exc.errors)})
            raise
        result = alert_operations_for(rt).add_silence(matchers=wanted.matchers, ends_at=wanted.ends_at,
                                            starts_at=wanted.starts_at, created_by=actor(), comment=wanted.comment)
        _audit("silence.create", f"silence:{result['id']}", detail={"matchers": result["matchers"]})
        with runtime().store.session() as s:
            return silence_dict(s.get(Silence, result["id"]), utcnow()), 201


@ns.route("/silences/<int:silence_id>")
class SilenceItem(Resource):
    @require_role("viewer")
    def get(self, silence_id: int):
        with runtime().store.session() as s:
            row = s.get(Silence, silence_id)
            if row is None:
                abort(404, f"no silence {silence_id}")
            return silence_dict(row, utcnow())

    @require_role("operator")
    def delete(self, silence_id: int):
        """Expire a silence now; alerts it muted notify again if still firing."""
        rt = runtime()
        outcome = alert_operations_for(rt).expire_silence(silence_id)
        dispatch_deliveries(rt, outcome.deliver)
        _audit("silence.expire", f"silence:{silence_id}")
        with rt.store.session() as s:
            return silence_dict(s.get(Silence, silence_id), utcnow())


@ns.route("/rules")
class RuleList(Resource):
    @require_role("viewer")
    def get(self):
        """Rules from the config file, built-in default rules, and rules added through the API."""
        rt = runtime()
        builtin = rt.config.alerting.builtin_rule_names()
        config_rules = [{**r.model_dump(mode="json", by_alias=True), "source": "default" if r.name in builtin else "config"}
                        for r in rt.config.alerting.rules]
        with rt.store.session() as s:
            api_rules = [{**row.definition, "enabled": row.enabled, "source": "api", "created_by": row.created_by}
                         for row in s.scalars(select(AlertRuleRow).order_by(AlertRuleRow.id))]
        return {"items": config_rules + api_rules}

    @ns.response(201, "created")
    @require_role("admin")
    def post(self):
        """Add a rule (same fields as in the config file); errors name the field."""
        rt = runtime()
        rule = load_rule(json_object())
        if any(r.name == rule.name for r in rt.config.alerting.rules):
            raise ConfigError([("rule.name", f"{rule.name!r} is defined in the config file")], "rule")
        definition = rule.model_dump(mode="json", by_alias=True)
        with rt.store.session() as s:
            if s.scalar(select(AlertRuleRow.id).where(AlertRuleRow.name == rule.name)) is not None:
                raise ConfigError([("rule.name", f"a rule named {rule.name!r} exists")], "rule")
            s.add(AlertRuleRow(name=rule.name, definition=definition, enabled=rule.enabled, created_by=actor()))
        _audit("rule.create", f"rule:{rule.name}")
        return {**definition, "source": "api"}, 201


@ns.route("/rules/<string:name>")
class RuleItem(Resource):
    @require_role("admin")
    def delete(self, name: str):
        """Delete an API rule; its alerts clear at the next evaluation."""
        with runtime().store.session() as s:
            row = s.scalar(select(AlertRuleRow).where(AlertRuleRow.name == name))
            if row is None:
                abort(404, f"no API rule named {name!r}")
            s.delete(row)
        _audit("rule.delete", f"rule:{name}")
        return {"deleted": name}


@ns.route("/channels")
class ChannelList(Resource):
    @require_role("viewer")
    def get(self):
        """Configured channels (type and name only; URLs and secrets stay in the config file)."""
        channels = runtime().config.alerting.channels
        return {"items": [{"name": name, "type": spec.type, "send_resolved": spec.send_resolved,
                           "rate_limit": spec.rate_limit.model_dump() if spec.rate_limit else None}
                          for name, spec in channels.items()]}


@ns.route("/channels/<string:name>/test")
class ChannelTest(Resource):
    @ns.response(202, "queued")
    @require_role("operator")
    def post(self, name: str):
        """Queue a test notification; follow it in GET /alerts/notifications/{id}."""
        rt = runtime()
        if name in rt.config.alerting.channels:
            _test_send_budget(rt, name)
        nid = alert_operations_for(rt).test_send(name)
        dispatch_deliveries(rt, [nid])
        _audit("channel.test", f"channel:{name}", detail={"notification_id": nid})
        return {"notification_id": nid, "channel": name, "status": "queued"}, 202


def _test_send_budget(rt, channel: str) -> None:
    """A test send per call would let an operator flood a pager: take a token or answer 429."""
    key = "test-send:" + hashlib.sha256(channel.encode()).hexdigest()[:32]
    per_minute = rt.settings.channel_test_per_minute
    with rt.store.session() as s:
        decision = ratelimit.take(s, key, RateLimit(per_minute=per_minute, burst=per_minute), utcnow())
    if not decision.allowed:
        wait = max(1, math.ceil((decision.next_token_at - utcnow()).total_seconds()))
        _audit("channel.test", f"channel:{channel}", "denied", {"reason": "rate limited"})
        abort(429, f"at most {per_minute} test sends per minute to one channel; retry in {wait}s",
              errors={"channel": "too many test sends"})


@ns.route("/notifications/<int:notification_id>")
class NotificationItem(Resource):
    @require_role("viewer")
    def get(self, notification_id: int):
        with runtime().store.session() as s:
            row = s.get(Notification, notification_id)
            if row is None:
                abort(404, f"no notification {notification_id}")
            attempts = s.scalars(select(NotificationAttempt).where(NotificationAttempt.notification_id == row.id)
                                 .order_by(NotificationAttempt.id)).all()
            return notification_dict(row, attempts)


_ACK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Acknowledge incident #{id}</title></head>
<body style="font-family: sans-serif"><h2>{title}</h2><p>Incident #{id} · {severity} · {status}</p>{body}</body></html>"""
_CONFIRM_FORM = ('<form method="post"><input type="hidden" name="confirm" value="1">'
                 '<button type="submit">Acknowledge</button></form>')


@ns.route("/ack/<string:token>")
class SignedAck(Resource):
    """The link in notifications. GET only shows a confirm button, because mail scanners and
    chat unfurlers fetch links; the POST from that button acknowledges."""

    @ns.doc(security=[])
    def get(self, token: str):
        rt = runtime()
        incident_id = ack_links.verify(rt.settings.secret_keys(), token, rt.config.alerting.ack_link_max_age)
        with rt.store.session() as s:
            incident = s.get(Incident, incident_id)
            if incident is None:
                abort(404, f"no incident {incident_id}")
            form = _CONFIRM_FORM if incident.status == "open" else "<p>Nothing to do: the incident is not open.</p>"
            page = _ACK_PAGE.format(id=incident.id, title=escape(incident.title), severity=incident.severity,
                                    status=incident.status, body=form)
        return Response(page, mimetype="text/html")

    @ns.doc(security=[])
    def post(self, token: str):
        rt = runtime()
        try:
            incident_id = ack_links.verify(rt.settings.secret_keys(), token, rt.config.alerting.ack_link_max_age)
        except DbmonError:
            # Anyone can post a forged token: capped per address like every keyless request.
            anonymous_audit.record(rt.store, limit=rt.settings.audit_anonymous_per_minute,
                                   remote_addr=request.remote_addr, action="incident.acknowledge",
                                   target="incident:?", outcome="denied", detail={"via": "ack-link"})
            mark_recorded()
            raise
        result = alert_operations_for(rt).acknowledge(incident_id, "ack-link")
        with rt.store.session() as s:
            audit.record(s, actor="ack-link", action="incident.acknowledge", target=f"incident:{incident_id}",
                         outcome="ok", detail=result, remote_addr=request.remote_addr)
        if request.mimetype == "application/x-www-form-urlencoded" or "text/html" in request.headers.get("Accept", ""):
            body = f"<p>Acknowledged by link. Status: {escape(result['status'])}.</p>"
            return Response(_ACK_PAGE.format(id=incident_id, title="Incident acknowledged", severity="",
                                             status=result["status"], body=body), mimetype="text/html")
        return result
