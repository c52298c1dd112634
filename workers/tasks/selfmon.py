"""dbmon's self-check: on the maintenance queue, like the other checks that must notice stuck work."""

from __future__ import annotations

from monitor_app.platform.runtime import Runtime
from monitor_app.selfmon.check import run_check
from workers.task_base import dbmon_task


@dbmon_task("selfmon.check", time_limit=60, max_retries=0)
def check(rt: Runtime) -> dict:
    """Snapshot, dbmon's series, the dead-man ping; the next scheduled check is the retry."""
    return run_check(rt)
