"""The pages: server-rendered views for people, signed in with an API key exchanged for a session.

Each page module is a blueprint listed in PAGE_MODULES; `install` wires the session, the static
files and the blueprints into the app. The JSON API stays key-only: a session cookie opens pages,
never /api/v1 (so a cross-site request can never ride a browser's session into the API)."""

from __future__ import annotations

import importlib
from datetime import timedelta

from flask import Flask

from api.web import session_auth

PAGE_MODULES: list[str] = [
    "api.web.session_auth:blueprint",
    "api.web.overview:blueprint",
    "api.web.live:blueprint",
    "api.web.incidents:blueprint",
    "api.web.inventory:blueprint",
    "api.web.asset_page:blueprint",
    "api.web.system:blueprint",
]
SESSION_HOURS = 12


def install(app: Flask, rt) -> None:
    app.secret_key = session_auth.session_key(rt.settings)
    app.config.update(
        SESSION_COOKIE_NAME="dbmon_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=rt.settings.api_tls,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    app.context_processor(session_auth.template_context)
    for path in PAGE_MODULES:
        module, _, attr = path.partition(":")
        app.register_blueprint(getattr(importlib.import_module(module), attr))
