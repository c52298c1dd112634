"""Posture checks: one asset per task, and the scheduled fan-out."""

from __future__ import annotations

from monitor_app.posture.check import checkable_assets, due_assets, run_check
from monitor_app.platform.runtime import Runtime
from workers.task_base import dbmon_task, fan_out


@dbmon_task("posture.check", time_limit=120)
def check(rt: Runtime, asset_id: int | None = None) -> dict:
    """With an asset: check it now. Without (a `posture` scan of everything): one task per asset."""
    if asset_id is None:
        return fan_out(rt, "posture.check", checkable_assets(rt))
    return run_check(rt, asset_id)


@dbmon_task("posture.check_due", time_limit=60)
def check_due(rt: Runtime) -> dict:
    """Fan out one check per PostgreSQL asset whose DBMON_POSTURE_INTERVAL has passed."""
    return fan_out(rt, "posture.check", due_assets(rt))
