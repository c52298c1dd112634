"""Config assets and their reachability."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from monitor_app.assets import reachability_check
from monitor_app.assets.config_assets import sync_config_assets
from monitor_app.platform.runtime import Runtime
from monitor_app.store.base import utcnow
from workers.run_audit import audited_run
from workers.task_base import dbmon_task, fan_out


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
    if rt.config.watch:
        # Watch entries apply at once. An asset's own files wait for the next beat sync (2 min):
        # its server is asked only once its probe, sent just above, has found it up.
        rt.dispatch("files.sync_watches", {})
    return result


@dbmon_task("assets.check_reachability", time_limit=120)
def check_reachability(rt: Runtime, asset_id: int | None = None) -> dict:
    """With an asset: probe it. Without: one task per due asset, so a slow or broken target
    delays only its own task."""
    if asset_id is None:
        with rt.store.session() as s:
            due = reachability_check.due_assets(s, utcnow())
        return fan_out(rt, "assets.check_reachability", due)
    return reachability_check.run_check(rt, asset_id)
