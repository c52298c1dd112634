"""The periodic schedule. Intervals come from settings so tests and deployments can tune them."""

from __future__ import annotations

from monitor_app.alerting import schedule as alerting_schedule
from monitor_app.config.settings import Settings
from monitor_app.platform.task_queues import queue_for

CONFIG_SYNC_INTERVAL = 300.0
PRUNE_INTERVAL = 3600.0
METRICS_COMPACT_INTERVAL = 300.0  # finished hours are packed within minutes of ending
PG_FAST_SWEEP_INTERVAL = 2.0  # finer than the fast interval, so polls stay near their spread slots
PG_MEDIUM_SWEEP_INTERVAL = 5.0  # the medium and slow tiers' sweeps
SQLITE_SWEEP_INTERVAL = 5.0
CONTAINER_SWEEP_INTERVAL = 5.0
FILE_WATCH_SYNC_INTERVAL = 120.0  # asks local PostgreSQL servers where their files are
FILE_RESCAN_SWEEP_INTERVAL = 60.0  # each watch is due every files.rescan_interval
BACKUP_SWEEP_INTERVAL = 30.0  # settles backups in progress and notices missing ones
POSTURE_SWEEP_INTERVAL = 300.0  # how often due posture checks are looked for; each asset's own interval is a setting


def _every(task: str, seconds: float, *, expires: bool = True) -> dict:
    # An entry that expires with its interval is dropped, not queued twice, while workers are busy.
    options = {"queue": queue_for(task)}
    if expires:
        options["expires"] = seconds
    return {"task": task, "schedule": seconds, "options": options}


def entries(settings: Settings) -> dict:
    return {
        # Hosts are sampled by their workers (workers/host_sampler.py); beat only notices a silent one.
        "host-sampler-liveness": _every("maintenance.check_host_samplers", settings.host_sample_interval),
        # The per-asset sweeps run every tick: each asset falls due at its own slot in its interval
        # (platform/spread.py), and a sweep that ran once per interval would bunch them up again.
        "reachability": _every("assets.check_reachability", min(settings.sweep_tick, settings.reachability_interval)),
        "containers-reconcile": _every("containers.reconcile", settings.containers_reconcile_interval),
        "containers-probe": _every("containers.probe", settings.reachability_interval),
        "sync-config": _every("assets.sync_config", CONFIG_SYNC_INTERVAL, expires=False),
        "redeliver-lost-tasks": _every("maintenance.redeliver", settings.redeliver_interval),
        "schema-checks": _every("schema.check_due", settings.sweep_tick),
        "prune-old-data": _every("maintenance.prune", PRUNE_INTERVAL, expires=False),
        # Each asset's poll falls due at its own slot in its interval; the sweep only has to be finer.
        "pg-fast-tier": _every("metrics.pg_fast_due", PG_FAST_SWEEP_INTERVAL),
        "pg-medium-tier": _every("metrics.pg_medium_due", PG_MEDIUM_SWEEP_INTERVAL),
        "pg-slow-tier": _every("metrics.pg_slow_due", PG_MEDIUM_SWEEP_INTERVAL),
        "pgbouncer-metrics": _every("metrics.pgbouncer_due", PG_FAST_SWEEP_INTERVAL),
        "mysql-metrics": _every("metrics.mysql_due", PG_FAST_SWEEP_INTERVAL),
        "sqlite-metrics": _every("metrics.sqlite_due", SQLITE_SWEEP_INTERVAL),
        "container-metrics": _every("metrics.container_due", CONTAINER_SWEEP_INTERVAL),
        "metrics-compact": _every("metrics.compact", METRICS_COMPACT_INTERVAL),
        "posture-checks": _every("posture.check_due", min(POSTURE_SWEEP_INTERVAL, settings.posture_interval)),
        "files-sync-watches": _every("files.sync_watches", FILE_WATCH_SYNC_INTERVAL),
        "files-rescan": _every("files.rescan_due", FILE_RESCAN_SWEEP_INTERVAL),
        "files-backups": _every("files.check_backups", BACKUP_SWEEP_INTERVAL),
        # dbmon's own health (docs/self-monitoring.md): series for the built-in rules, the dead-man ping.
        "selfmon-check": _every("selfmon.check", settings.selfmon_check_interval),
        **alerting_schedule.entries(settings),
    }
