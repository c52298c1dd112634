"""dbmon itself: its processes, queues, task failures and dead-man's switch (docs/self-monitoring.md)."""

from __future__ import annotations

from flask_restx import Namespace, Resource

from api.auth import require_role
from api.context import runtime
from monitor_app.selfmon.snapshot import take_snapshot

ns = Namespace("system", description="dbmon's own health: components, queues, task failures")


@ns.route("")
class System(Resource):
    @require_role("viewer")
    def get(self):
        """The self-check's snapshot, taken now: `healthy`, `problems`, store, broker, workers, beat,
        watcher, watch sources, queues, task failures, every component's heartbeat, the dead-man's switch."""
        rt = runtime()
        return take_snapshot(rt.store, rt.settings).as_dict()
