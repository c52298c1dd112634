from __future__ import annotations

from flask import Blueprint, jsonify

from api.context import runtime
from monitor_app.platform.dependency_health import check_broker, check_store

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    """200 when the store and the broker answer, 503 otherwise. No auth: load balancers call it."""
    rt = runtime()
    checks = {"database": check_store(rt.store), "broker": check_broker(rt.settings)}
    ok = all(c["ok"] for c in checks.values())
    return jsonify(status="ok" if ok else "degraded", checks=checks), 200 if ok else 503
