"""File monitoring tasks: thin wrappers over `monitor_app.files`."""

from __future__ import annotations

from monitor_app.files import runs, watch_sync
from monitor_app.files.scan_run import run_scan
from monitor_app.platform.runtime import Runtime
from workers.task_base import dbmon_task


def _scan_all(rt: Runtime, watch_ids: list[int], reason: str) -> list[int]:
    rt.dispatch_many("files.scan", [{"watch_id": w, "reason": reason} for w in watch_ids])
    return watch_ids


@dbmon_task("files.sync_watches", time_limit=120)
def sync_watches(rt: Runtime) -> dict:
    """Bring the stored watches in line with the config file and the assets; baseline new ones."""
    out = watch_sync.sync(rt)
    _scan_all(rt, out["baseline"], "baseline")
    return out


@dbmon_task("files.scan", time_limit=600)
def scan(rt: Runtime, watch_id: int | None = None, paths: list[str] | None = None, reason: str = "rescan") -> dict:
    """With a watch: read it (or only `paths`) and report changes. Without: every watch, in full."""
    if watch_id is None:
        with rt.store.session() as s:
            return {"dispatched": _scan_all(rt, runs.live_watch_ids(s), reason)}
    return run_scan(rt, watch_id, paths, reason)


@dbmon_task("files.rescan_due", time_limit=60)
def rescan_due(rt: Runtime) -> dict:
    """The safety net under the real-time events: a full rescan of each watch every rescan_interval."""
    return {"dispatched": _scan_all(rt, runs.due_for_rescan(rt), "periodic")}


@dbmon_task("files.check_backups", time_limit=600)
def check_backups(rt: Runtime) -> dict:
    return runs.backup_sweep(rt)
