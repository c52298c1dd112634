"""The System page: dbmon watching itself. Workers, beat, the watcher and each watch source with
their last heartbeat, queue depth and age of the oldest waiting message, the task failure rate,
store and broker reachability and the dead-man's switch; the same snapshot as GET /api/v1/system."""

from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from api.context import runtime
from api.web.overview import render_page_error
from api.web.session_auth import page_role
from monitor_app.selfmon.snapshot import take_snapshot

blueprint = Blueprint("system", __name__)
blueprint.register_error_handler(HTTPException, render_page_error)


@blueprint.get("/system")
@page_role("viewer")
def index():
    rt = runtime()
    snapshot = take_snapshot(rt.store, rt.settings)
    return render_template("pages/system.html", snap=snapshot.as_dict())
