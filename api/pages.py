"""Retired: the status page moved to the page blueprints (`api.web.overview` serves `/`).

`api.create_app` still registers this blueprint; it has no routes left, so `/` is answered by
the Overview, which shows the public summary to signed-out visitors as this module used to.
"""

from __future__ import annotations

from flask import Blueprint

pages = Blueprint("pages", __name__)
