"""GET /metrics: the latest values in Prometheus' text format.

A scraper authenticates with `Authorization: Bearer <token>`, the token being either
`DBMON_METRICS_BEARER_TOKEN` or an API key with the viewer role; an `X-API-Key` header works as on
every other endpoint. Refusals are audited like any other. dbmon's own metrics (tasks,
notifications, detection latency: monitor_app/platform/own_metrics.py) follow the monitored values.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from flask import Blueprint, Response, request
from flask_restx import abort

from api.audit_trail import note_denial
from api.context import runtime
from monitor_app.access.api_keys import authenticate
from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.metrics.exposition import latest_exposition
from monitor_app.platform import own_metrics
from monitor_app.store.base import utcnow

prometheus = Blueprint("prometheus", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _authorised(rt) -> bool:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    configured = rt.settings.metrics_bearer_token
    if token and configured and hmac.compare_digest(token.encode(), configured.encode()):
        return True
    key = token or request.headers.get("X-API-Key")
    with rt.store.session() as s:
        who = authenticate(s, key)
    if who is not None and who.allows("viewer"):
        return True
    note_denial(who.name if who else None, {"needed_role": "viewer", "had_role": who.role if who else None,
                                            "reason": "unknown token" if key else "no token"})
    return False


@prometheus.get("/metrics")
def metrics():
    rt = runtime()
    if not _authorised(rt):
        abort(401, "missing or invalid bearer token or X-API-Key header")
    with rt.store.session() as s:
        body = latest_exposition(s, utcnow(), timedelta(seconds=rt.settings.metrics_stale_seconds),
                                 LabelRedactor(rt.settings.label_deny_patterns))
    # dbmon's own metrics follow, added up over every process of this machine's deployment.
    return Response(body + own_metrics.exposition(), content_type=CONTENT_TYPE)
