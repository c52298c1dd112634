"""The Inventory page: assets by source with engine, version and TLS certificate expiry, and the
containers discovery saw but did not take as databases, with its reasons."""

from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from api.context import runtime
from api.web.overview import redactor, render_page_error
from api.web.session_auth import page_role
from monitor_app.status.inventory import EXPIRING_DAYS, inventory
from monitor_app.store.base import utcnow

blueprint = Blueprint("inventory", __name__)
blueprint.register_error_handler(HTTPException, render_page_error)


@blueprint.get("/inventory")
@page_role("viewer")
def index():
    with runtime().store.session() as s:
        view = inventory(s, redactor=redactor(), now=utcnow())
    return render_template("pages/inventory.html", view=view, expiring_days=EXPIRING_DAYS)
