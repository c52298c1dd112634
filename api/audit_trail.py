"""Refused and failed requests leave an audit row, whichever endpoint they reached.

Endpoints record their own successful actions (with the action's name and details). This hook
catches what they cannot: a 401 or 403 on any method and any path, and a write request that
ended in an error, including input rejected before the endpoint ran and an exception that
rolled back the endpoint's transaction. Rows of requests without a valid key are capped per
source address (see monitor_app.access.anonymous_audit).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request

from api.context import principal, runtime
from monitor_app.access import audit
from monitor_app.access import anonymous_audit

log = logging.getLogger("dbmon.api.audit")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def install(app: Flask) -> None:
    app.after_request(_record_refusals_and_failures)


def mark_recorded() -> None:
    """The endpoint wrote this request's audit row itself (e.g. an `invalid` outcome)."""
    g.audit_recorded = True


def note_denial(actor: str | None, detail: dict) -> None:
    """Called by the role check: who was refused and why, for the row the hook writes."""
    g.audit_denial = {"actor": actor, "detail": detail}


def _record_refusals_and_failures(response: Response) -> Response:
    status = response.status_code
    # A page that sends a signed-out browser to the login page refused it as surely as a 401.
    noted = g.get("audit_denial") is not None
    if (status < 400 and not noted) or g.get("audit_recorded"):
        return response
    denied = status in (401, 403) or noted
    if not denied and request.method not in WRITE_METHODS:
        return response
    denial = g.get("audit_denial") or {}
    who = principal()
    actor = denial.get("actor") or (who.name if who else None)
    detail = {"status": status, **denial.get("detail", {})}
    body = response.get_json(silent=True) if response.is_json else None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        detail["message"] = body["message"][:300]
    fields = {"action": _action(), "target": request.path, "detail": detail,
              "outcome": "denied" if denied else ("invalid" if status < 500 else "error")}
    rt = runtime()
    try:
        if actor is None:
            anonymous_audit.record(rt.store, limit=rt.settings.audit_anonymous_per_minute,
                                   remote_addr=request.remote_addr, **fields)
        else:
            audit.record_now(rt.store, actor=actor, remote_addr=request.remote_addr, **fields)
    except Exception:  # noqa: BLE001 - the client still gets its answer; the gap is in the log
        log.exception("could not record %s %s (%s) in the audit trail", request.method, request.path, status)
    return response


def _action() -> str:
    rule = request.url_rule.rule if request.url_rule else request.path
    return f"{request.method} {rule}"
