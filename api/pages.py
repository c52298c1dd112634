from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from api.context import runtime
from monitor_app.apikeys import authenticate
from monitor_app.status_overview import status_overview

pages = Blueprint("pages", __name__)


@pages.get("/")
def status_page():
    rt = runtime()
    with rt.store.session() as s:
        if not rt.settings.public_status_page and authenticate(s, request.headers.get("X-API-Key")) is None:
            abort(401)
        view = status_overview(s)
        return render_template("status.html", **view)
