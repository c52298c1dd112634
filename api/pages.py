from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from api.context import runtime
from monitor_app.access.api_keys import authenticate
from monitor_app.status.overview import status_overview

pages = Blueprint("pages", __name__)


@pages.get("/")
def status_page():
    rt = runtime()
    with rt.store.session() as s:
        signed_in = authenticate(s, request.headers.get("X-API-Key")) is not None
        if not rt.settings.public_status_page and not signed_in:
            abort(401)
        view = status_overview(s, detailed=signed_in or rt.settings.public_status_detail == "full")
        return render_template("status.html", **view)
