"""Signing in to the pages: an API key exchanged for a session cookie, and CSRF on every form.

The cookie is Flask's signed session (HttpOnly, SameSite=Lax, Secure under TLS) holding the key's
id, never the key: revoking the key ends every session made with it at the next request. Each
session has its own CSRF token; every POST from a page must carry it (`csrf_token` form field or
`X-CSRF-Token` header) and, when the browser sends one, an Origin of this host. A request with an
`X-API-Key` header is authenticated by the key alone, as the API is (scripts, the old status page).
"""

from __future__ import annotations

import hmac
import secrets
from functools import wraps
from urllib.parse import urlparse

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for

from api.audit_trail import note_denial
from api.context import runtime
from monitor_app.access import audit
from monitor_app.access.api_keys import Principal, authenticate, key_id_of, principal_of
from monitor_app.access.secret_keys import derive
from monitor_app.store.models.core import ROLES

blueprint = Blueprint("session_auth", __name__)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def session_key(settings) -> bytes:
    return derive(settings.resolved_secret_key(), b"dbmon page sessions")


def current_principal() -> Principal | None:
    if "principal" in g:
        return g.principal
    rt = runtime()
    with rt.store.session() as s:
        header = request.headers.get("X-API-Key")
        who = authenticate(s, header) if header else principal_of(s, session.get("key_id"))
    if who is None and session.get("key_id") is not None:
        session.clear()  # the key was revoked: this session is over
    g.principal = who
    return who


def csrf_token() -> str:
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def check_csrf() -> None:
    """Abort 403 unless this POST carries the session's token and comes from this site."""
    if request.headers.get("X-API-Key"):
        return  # not a browser riding a cookie
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get(CSRF_FIELD) or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, "missing or invalid CSRF token; reload the page")
    origin = request.headers.get("Origin")
    if origin and urlparse(origin).netloc != request.host:
        abort(403, "cross-site request refused")


def page_role(role: str):
    """A page for `role` or better: signed-out browsers go to the login page, weaker roles get 403."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            who = current_principal()
            if who is None:
                note_denial(None, {"needed_role": role, "had_role": None, "reason": "not signed in"})
                return redirect(url_for("session_auth.login", next=request.full_path.rstrip("?")))
            if not who.allows(role):
                abort(403, f"this page needs the {role} role; you have {who.role}")
            if request.method == "POST":
                check_csrf()
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def _safe_next(target: str | None) -> str:
    # Only a path on this site: a login link must not send the user elsewhere afterwards.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        check_csrf()
        rt = runtime()
        with rt.store.session() as s:
            key_id = key_id_of(s, request.form.get("api_key", "").strip())
            who = principal_of(s, key_id)
        audit.record_now(rt.store, actor=who.name if who else "anonymous", action="session.login",
                         target="pages", outcome="ok" if who else "denied", remote_addr=request.remote_addr)
        if who is not None:
            session.clear()
            session.permanent = True
            session["key_id"] = key_id
            csrf_token()
            return redirect(_safe_next(request.args.get("next")))
        error = "That key is not valid (or it was revoked)."
    return render_template("pages/login.html", error=error, next=_safe_next(request.args.get("next"))), \
        401 if error else 200


@blueprint.post("/logout")
def logout():
    check_csrf()
    session.clear()
    return redirect(url_for("session_auth.login"))


def template_context() -> dict:
    """What every page template can use: who is signed in, the CSRF token, the nav."""
    who = g.get("principal")
    rt = runtime()
    return {"principal": who, "csrf_token": csrf_token, "csrf_field": CSRF_FIELD,
            "flower_url": _flower_url(rt.settings) if who and who.allows("operator") else None}


def _flower_url(settings) -> str | None:
    if not settings.flower_enabled:
        return None
    scheme = "https" if settings.api_tls else "http"
    host = request.host.rsplit(":", 1)[0] if request.host else settings.flower_host
    return f"{scheme}://{host}:{settings.flower_port}/"
