"""The Incidents pages: `/incidents` (list, filters) and `/incidents/<id>` (timeline, notification
log), with acknowledge, resolve and silence as POST forms.

The actions call the same alerting operations as the API (`alert_operations_for(rt)`), so an
acknowledge from the page stops escalation exactly as one from the API, CLI or a signed link
does, and each is audited under the API's action names. page_role checks the operator role and
the form's CSRF token before any of them runs; refusals are audited by api.audit_trail.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from api.audit_trail import mark_recorded
from api.context import actor, runtime
from api.silence_request import read_silence
from api.web.overview import redactor, render_page_error
from api.web.session_auth import page_role
from monitor_app.access import audit
from monitor_app.alerting.service import alert_operations_for, dispatch_deliveries
from monitor_app.errors import ConfigError, NotFound
from monitor_app.platform.vocabulary import SEVERITIES
from monitor_app.status.incidents_view import STATES, IncidentQuery, incident_detail, list_incidents
from monitor_app.store.base import utcnow
from monitor_app.store.models.alerting import Incident

blueprint = Blueprint("incidents", __name__)
blueprint.register_error_handler(HTTPException, render_page_error)
MAX_MATCHER_LINES = 64


def _audit(action: str, target: str, outcome: str = "ok", detail: dict | None = None) -> None:
    with runtime().store.session() as s:
        audit.record(s, actor=actor(), action=action, target=target, outcome=outcome,
                     detail={**(detail or {}), "via": "page"}, remote_addr=request.remote_addr)
    mark_recorded()


def _back(incident_id: int):
    return redirect(url_for("incidents.detail", incident_id=incident_id), code=303)


@blueprint.get("/incidents")
@page_role("viewer")
def index():
    query = IncidentQuery.from_args(request.args)
    with runtime().store.session() as s:
        found = list_incidents(s, query)
    return render_template("pages/incidents.html", found=found, states=STATES, severities=SEVERITIES)


def _render_detail(incident_id: int, errors: dict | None = None, form: dict | None = None, status: int = 200):
    with runtime().store.session() as s:
        view = incident_detail(s, incident_id, redactor())
        if view is None:
            abort(404, f"no incident {incident_id}")
        return render_template("pages/incident.html", view=view, errors=errors or {}, form=form or {},
                               now=utcnow()), status


@blueprint.get("/incidents/<int:incident_id>")
@page_role("viewer")
def detail(incident_id: int):
    return _render_detail(incident_id)


@blueprint.post("/incidents/<int:incident_id>/acknowledge")
@page_role("operator")
def acknowledge(incident_id: int):
    try:
        result = alert_operations_for(runtime()).acknowledge(incident_id, actor())
    except NotFound:
        abort(404, f"no incident {incident_id}")
    _audit("incident.acknowledge", f"incident:{incident_id}", detail=result)
    flash("Acknowledged: escalation and repeats stop; the incident stays open until it resolves."
          if result["status"] == "acknowledged" else f"Nothing to acknowledge: the incident is {result['status']}.")
    return _back(incident_id)


@blueprint.post("/incidents/<int:incident_id>/resolve")
@page_role("operator")
def resolve(incident_id: int):
    rt = runtime()
    try:
        outcome = alert_operations_for(rt).resolve(incident_id, actor())
    except NotFound:
        abort(404, f"no incident {incident_id}")
    dispatch_deliveries(rt, outcome.deliver)
    _audit("incident.resolve", f"incident:{incident_id}", detail={"alerts_resolved": outcome.resolved})
    flash(f"Resolved ({outcome.resolved} alert(s) cleared).")
    return _back(incident_id)


@blueprint.post("/incidents/<int:incident_id>/silence")
@page_role("operator")
def silence(incident_id: int):
    rt = runtime()
    with rt.store.session() as s:
        if s.get(Incident, incident_id) is None:
            abort(404, f"no incident {incident_id}")
    form = {"matchers": request.form.get("matchers", "")[:40_000], "duration": request.form.get("duration", ""),
            "comment": request.form.get("comment", "")}
    lines = [line.strip() for line in form["matchers"].splitlines() if line.strip()][:MAX_MATCHER_LINES + 1]
    body = {"matchers": lines, "duration": form["duration"].strip() or None, "comment": form["comment"]}
    try:
        wanted = read_silence(body, utcnow(), timedelta(days=rt.settings.silence_max_days))
    except ConfigError as exc:
        _audit("silence.create", "silence", "invalid", {"errors": dict(exc.errors)})
        return _render_detail(incident_id, errors=dict(exc.errors), form=form, status=400)
    result = alert_operations_for(rt).add_silence(matchers=wanted.matchers, ends_at=wanted.ends_at,
                                                  starts_at=wanted.starts_at, created_by=actor(),
                                                  comment=wanted.comment)
    _audit("silence.create", f"silence:{result['id']}", detail={"matchers": result["matchers"],
                                                                "incident": incident_id})
    flash(f"Silence {result['id']} created until {result['ends_at']:%Y-%m-%d %H:%M} UTC.")
    return _back(incident_id)
