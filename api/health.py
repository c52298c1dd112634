"""`/healthz`: for load balancers and container healthchecks, without authentication.

The status code follows the store and the broker only: an API that cannot reach them cannot serve,
so a load balancer should take it out. dbmon's other parts (workers, beat, the watcher and its
sources) are reported under `components` with their own `ok` and age, from the heartbeat rows they
write, but do not change the code: every API replica would fail together when a worker dies, and
taking the API out would hide exactly the page that shows what broke. The body names no hosts,
processes or URLs; `GET /api/v1/system` (viewer) has the details.
"""

from __future__ import annotations

import os
import threading

from flask import Blueprint, current_app, jsonify

from api.context import runtime
from monitor_app.platform.dependency_health import check_broker, check_store
from monitor_app.selfmon.reporters import HeartbeatWriter, this_host
from monitor_app.selfmon.snapshot import component_health

health = Blueprint("health", __name__)
_writing = threading.Lock()


def _note_api_alive(rt) -> None:
    """This API process's row (kind `api`), at most once per heartbeat interval and off the request
    thread: a store busy with a long write must not hold up a load balancer's check. Informational:
    an idle API is asked for /healthz only as often as its load balancer asks."""
    writer = current_app.extensions.get("dbmon_api_heartbeat")
    if writer is None:
        writer = current_app.extensions["dbmon_api_heartbeat"] = HeartbeatWriter(
            lambda: rt.store, "api", f"api@{this_host()}:{os.getpid()}", rt.settings.selfmon_heartbeat_interval)
    if not writer.due() or not _writing.acquire(blocking=False):
        return

    def write() -> None:
        try:
            writer.write(detail={"via": "healthz"})
        finally:
            _writing.release()

    threading.Thread(target=write, name="api-heartbeat", daemon=True).start()


@health.get("/healthz")
def healthz():
    """200 when the store and the broker answer, 503 otherwise; `components` are informational."""
    rt = runtime()
    checks = {"database": check_store(rt.store), "broker": check_broker(rt.settings)}
    ok = all(c["ok"] for c in checks.values())
    components: dict = {"ok": False, "error": "the store does not answer"}
    if checks["database"]["ok"]:
        try:
            components = component_health(rt.store).public_dict()
            _note_api_alive(rt)
        except Exception as exc:  # noqa: BLE001 - the checks above decide the code; this is extra
            components = {"ok": False, "error": type(exc).__name__}
    return jsonify(status="ok" if ok else "degraded", checks=checks, components=components), 200 if ok else 503
