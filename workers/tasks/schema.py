"""Schema checks: one asset per task, and the scheduled fan-out."""

from __future__ import annotations

from monitor_app.platform.runtime import Runtime
from monitor_app.schema.check import due_assets, run_check
from workers.task_base import dbmon_task, fan_out


@dbmon_task("schema.check", time_limit=120)
def check(rt: Runtime, asset_id: int, context: dict | None = None) -> dict:
    """Snapshot one asset; store a version, a change set and an event only if it changed."""
    return run_check(rt, asset_id, context)


@dbmon_task("schema.check_due", time_limit=60)
def check_due(rt: Runtime) -> dict:
    """Fan out one scheduled check per asset whose interval has passed."""
    return fan_out(rt, "schema.check", due_assets(rt))
