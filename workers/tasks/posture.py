"""Posture checks: one asset per task, and the scheduled fan-out."""

from __future__ import annotations

from monitor_app.posture.check import checkable_assets, due_assets, run_check
from monitor_app.runtime import Runtime
from workers.task_base import dbmon_task


@dbmon_task("posture.check", queue="schema", time_limit=120)
def check(rt: Runtime, asset_id: int | None = None) -> dict:
    """With an asset: check it now. Without (a `posture` scan of everything): one task per asset."""
    if asset_id is None:
        ids = checkable_assets(rt)
        for each in ids:
            rt.dispatch("posture.check", {"asset_id": each})
        return {"dispatched": len(ids), "asset_ids": ids}
    return run_check(rt, asset_id)


@dbmon_task("posture.check_due", queue="schema", time_limit=60)
def check_due(rt: Runtime) -> dict:
    """Fan out one check per PostgreSQL asset whose DBMON_POSTURE_INTERVAL has passed."""
    ids = due_assets(rt)
    for asset_id in ids:
        rt.dispatch("posture.check", {"asset_id": asset_id})
    return {"dispatched": len(ids), "asset_ids": ids}
