"""Request-scoped access to the runtime and the authenticated principal."""

from __future__ import annotations

from flask import current_app, g

from monitor_app.access.api_keys import Principal
from monitor_app.platform.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["dbmon"]


def principal() -> Principal | None:
    return g.get("principal")


def actor() -> str:
    p = principal()
    return p.name if p else "anonymous"
