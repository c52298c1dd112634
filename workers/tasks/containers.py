"""Container discovery tasks: thin wrappers over `monitor_app.containers.runs`."""

from __future__ import annotations

from monitor_app.containers import runs
from monitor_app.platform.runtime import Runtime
from workers.run_audit import audited_run
from workers.task_base import dbmon_task, fan_out


@dbmon_task("containers.reconcile", time_limit=300)
def reconcile_containers(rt: Runtime) -> dict:
    if not rt.config.containers.enabled:
        return {"skipped": "containers.enabled is false"}
    with audited_run(rt, "discovery.run", "docker") as entry:
        out = runs.run_reconcile(rt)
        # Counts only: names of hundreds of containers would bloat every row of a routine run.
        entry.detail.update({k: len(v) if isinstance(v, list) else v for k, v in out.as_dict().items()})
    return out.as_dict()


@dbmon_task("containers.handle_event", time_limit=60)
def handle_container_event(rt: Runtime, container_id: str, action: str, time_nano: int,
                           attributes: dict | None = None) -> dict:
    event = {"container_id": container_id, "action": action, "time_nano": time_nano, "attributes": attributes or {}}
    return runs.run_event(rt, event).as_dict()


@dbmon_task("containers.probe", time_limit=120)
def probe_container_asset(rt: Runtime, asset_id: int | None = None) -> dict:
    """With an asset: TCP and TLS on each endpoint. Without: one task per live docker asset."""
    if asset_id is None:
        with rt.store.session() as s:
            ids = runs.probe_targets(s)
        return fan_out(rt, "containers.probe", ids)
    return runs.run_probe(rt, asset_id)
