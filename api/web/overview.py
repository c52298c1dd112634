"""The Overview page at `/`, and the public status summary there for signed-out visitors.

Signed in (session or X-API-Key), any role sees every asset with its 90-day history, open
incidents, recent changes and the host charts, filtered by the query string, and live.js keeps
it current from `/live`. Signed out, `DBMON_PUBLIC_STATUS_PAGE` decides between the public
summary (counts and the overall state; with `DBMON_PUBLIC_STATUS_DETAIL=full` the assets and
changes too, read-only) and the login page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from api.audit_trail import note_denial
from api.context import runtime
from api.web.session_auth import current_principal
from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.status.asset_filter import AssetFilter
from monitor_app.status.overview import overview, public_summary
from monitor_app.store.base import utcnow

blueprint = Blueprint("overview", __name__)


def render_page_error(exc: HTTPException):
    """Pages answer errors with a page, not the API's JSON."""
    return render_template("pages/error.html", code=exc.code, name=exc.name, message=exc.description), exc.code


blueprint.register_error_handler(HTTPException, render_page_error)


def redactor() -> LabelRedactor:
    return LabelRedactor(runtime().settings.label_deny_patterns)


@blueprint.get("/")
def index():
    rt = runtime()
    who = current_principal()
    if who is None and not rt.settings.public_status_page:
        note_denial(None, {"needed_role": "viewer", "had_role": None, "reason": "not signed in"})
        return redirect(url_for("session_auth.login", next="/"))
    filters = AssetFilter.from_args(request.args)
    with rt.store.session() as s:
        if who is None and rt.settings.public_status_detail != "full":
            return render_template("pages/public_status.html", summary=public_summary(s))
        view = overview(s, filters=filters, redactor=redactor(), now=utcnow(), with_incidents=who is not None)
    live_url = None
    if who is not None:
        live_url = url_for("live.stream") + "?" + urlencode(
            {"after": view.last_event_id, **{k: v for k, v in (("label", filters.label), ("engine", filters.engine),
                                                              ("status", filters.status)) if v}})
    return render_template("pages/overview.html", view=view, live_url=live_url, signed_in=who is not None)
