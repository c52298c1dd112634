"""The PostgreSQL slow tier of one asset: the body of the `metrics.pg_slow` task, free of Celery.

Every PostgreSQL asset with credentials is polled each `slow_interval` (600 s by default) at its
own slot, through the kept connection the other tiers use. A poll stores sizes, vacuum health of
the largest tables, unused indexes and wraparound; it keeps the server's settings as the last
poll saw them and records `pg.setting_changed` for each one that changed since (the first poll
is the baseline). Failures are reported as `metrics.pg_slow.check_failed` / `check_recovered`.
"""

from __future__ import annotations

from datetime import datetime

from monitor_app.assets.login_target import login_target
from monitor_app.metrics import pg_polling
from monitor_app.metrics.pg_slow_queries import SlowReading, read_slow
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.platform.event_log import record_event
from monitor_app.store.base import utcnow

POLLS = PollTier("pg_slow", "metrics.pg_slow")
MAX_CHANGE_EVENTS = 20


def due_assets(rt, now: datetime | None = None) -> list[int]:
    return pg_polling.due_assets(rt, POLLS, rt.config.metrics.slow_interval_for, now)


def dispatch_due(rt, now: datetime | None = None) -> dict:
    return pg_polling.dispatch_due(rt, "metrics.pg_slow", POLLS, rt.config.metrics.slow_interval_for, now)


def run_poll(rt, asset_id: int, *, due_at: str | None = None, now: datetime | None = None) -> dict:
    """Poll one asset's slow tier and store what it read; a failure is reported, then raised as permanent."""
    settings = rt.config.metrics
    with rt.store.session() as s:
        _, name, connection, password = login_target(s, asset_id, rt.credentials)
    poll_interval = settings.slow_interval_for(name)
    if pg_polling.stale(due_at, poll_interval, now or utcnow()):
        return {"asset_id": asset_id, "skipped": "a later poll superseded this one"}
    reading = pg_polling.read_target(rt, POLLS, asset_id, name, connection, password, "metrics slow tier",
                                     lambda conn: read_slow(conn, settings.relations_top), poll_interval)
    return _store(rt, asset_id, name, reading, now or utcnow())


def setting_changes(before: dict | None, after: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    """(name, old, new) for each setting set, changed or back to its default; None is "not set"."""
    if not isinstance(before, dict):
        return []
    names = sorted(set(before) | set(after))
    return [(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]


def _store(rt, asset_id: int, name: str, reading: SlowReading, now: datetime) -> dict:
    samples = [SeriesSample(asset_id, metric, value, now, labels) for metric, value, labels in reading.gauges]
    changed: list[str] = []

    def update(session, state) -> None:
        state.polled_at = now
        if reading.settings is None:
            return  # unreadable this time: keep the last known settings to compare with later
        changed.extend(_record_setting_changes(session, asset_id, name, state.counters or {}, reading))
        state.counters = {"settings": reading.settings, "pending_restart": sorted(reading.pending_restart)}

    POLLS.store(rt, asset_id, name, samples, "; ".join(reading.problems) or None, update)
    return {"asset_id": asset_id, "samples": len(samples), "version": reading.version,
            "settings_changed": changed, "problems": reading.problems}


def _record_setting_changes(session, asset_id: int, name: str, earlier: dict, reading: SlowReading) -> list[str]:
    """One `pg.setting_changed` per setting whose value changed, or which newly waits for a
    restart (such a setting keeps its running value until then); the names, in order."""
    if "settings" not in earlier:
        return []  # the first poll is the baseline
    assert reading.settings is not None
    pending = sorted(set(reading.pending_restart) - set(earlier.get("pending_restart") or ()))
    events = [(setting, f"setting {setting} was changed and takes effect at the next restart",
               {"setting": setting, "running": reading.settings.get(setting), "pending_restart": True})
              for setting in pending]
    events += [(setting, f"setting {setting} changed from {_shown(old)} to {_shown(new)}",
                {"setting": setting, "old": old, "new": new, "pending_restart": False})
               for setting, old, new in setting_changes(earlier.get("settings"), reading.settings)
               if setting not in pending]
    for _, summary, payload in events[:MAX_CHANGE_EVENTS]:
        record_event(session, type="pg.setting_changed", severity="info", asset_id=asset_id,
                     summary=f"{name}: {summary}", payload=payload)
    if len(events) > MAX_CHANGE_EVENTS:
        record_event(session, type="pg.setting_changed", severity="info", asset_id=asset_id,
                     summary=f"{name}: {len(events) - MAX_CHANGE_EVENTS} more settings changed",
                     payload={"more": len(events) - MAX_CHANGE_EVENTS})
    return [setting for setting, _, _ in events]


def _shown(value: str | None) -> str:
    return "its default" if value is None else repr(value)
