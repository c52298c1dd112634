"""Config assets and their reachability."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from monitor_app.assets.config_assets import password_for, sync_config_assets
from monitor_app.errors import NotFound
from monitor_app.assets.reachability import apply_probe, can_probe, probe
from monitor_app.platform.runtime import Runtime
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset
from workers.run_audit import audited_run
from workers.task_base import dbmon_task

PROBED_ENGINES = ("postgresql", "sqlite")


@dbmon_task("assets.sync_config", time_limit=60)
def sync_config(rt: Runtime) -> dict:
    with audited_run(rt, "config.reload", str(rt.settings.config_file)) as entry:
        try:
            with rt.store.session() as s:
                result = sync_config_assets(s, rt.config, rt.credentials).as_dict()
        except IntegrityError:
            # A concurrent sync (start-up and the config watcher race) inserted the same asset
            # first; a second pass sees its row and updates it instead.
            with rt.store.session() as s:
                result = sync_config_assets(s, rt.config, rt.credentials).as_dict()
        entry.detail.update(result)
    # New, revived and re-addressed assets are due now: look at them at once, not an interval later.
    # Runs on start-up too (`dbmon up`, the watcher's config source), so nothing waits for the first beat.
    rt.dispatch("assets.check_reachability", {})
    return result


@dbmon_task("assets.check_reachability", time_limit=120)
def check_reachability(rt: Runtime, asset_id: int | None = None) -> dict:
    """With an asset: probe it. Without: fan out one task per due asset, so a slow or broken
    target delays only its own task."""
    if asset_id is None:
        now = utcnow()
        with rt.store.session() as s:
            due = [a.id for a in s.scalars(select(Asset).where(
                Asset.engine.in_(PROBED_ENGINES), Asset.status != "gone",
                or_(Asset.next_check_at.is_(None), Asset.next_check_at <= now))) if can_probe(a)]
        runs = [rt.dispatch("assets.check_reachability", {"asset_id": a}) for a in due]
        return {"dispatched": len(runs), "asset_ids": list(due)}
    with rt.store.session() as s:
        asset = s.get(Asset, asset_id)
        if asset is None or asset.status == "gone":
            raise NotFound(f"asset {asset_id} does not exist or is gone")
        if not can_probe(asset):
            return {"asset_id": asset_id, "skipped": "no credentials to log in; probed by its port instead"}
        password = password_for(asset, rt.credentials)
        engine, connection, name = asset.engine, dict(asset.connection), asset.name
    # Probe outside the transaction: a slow target must not hold a store connection open.
    result = probe(_Target(engine, connection, name), password, rt.settings.probe_timeout)
    with rt.store.session() as s:
        asset = s.get(Asset, asset_id)
        changed = apply_probe(s, asset, result, rt.settings.reachability_interval)
        status = asset.status
    return {"asset_id": asset_id, "status": status, "changed": changed is not None,
            "latency_ms": round(result.latency_ms, 2), "error": result.error}


class _Target:
    def __init__(self, engine, connection, name):
        self.engine, self.connection, self.name = engine, connection, name
