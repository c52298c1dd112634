"""`X-API-Key` authentication with ordered roles: viewer < operator < admin."""

from __future__ import annotations

from functools import wraps

from flask import g, request
from flask_restx import abort

from api.audit_trail import note_denial
from api.context import runtime
from monitor_app.access.api_keys import authenticate
from monitor_app.store.models.core import ROLES

HEADER = "X-API-Key"


def require_role(role: str):
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            rt = runtime()
            with rt.store.session() as s:
                who = authenticate(s, request.headers.get(HEADER))
            if who is None or not who.allows(role):
                # The row itself is written by api.audit_trail once the refusal is the response.
                reason = "role too weak" if who else ("unknown key" if request.headers.get(HEADER) else "no key")
                note_denial(who.name if who else None,
                            {"needed_role": role, "had_role": who.role if who else None, "reason": reason})
            if who is None:
                abort(401, f"missing or invalid {HEADER} header")
            if not who.allows(role):
                abort(403, f"this action needs the {role} role; the key has {who.role}")
            g.principal = who
            return fn(*args, **kwargs)

        return wrapper

    return decorate
