"""The periodic schedule. Intervals come from settings so tests and deployments can tune them."""

from __future__ import annotations

from monitor_app.alerting import schedule as alerting_schedule
from monitor_app.settings import Settings


def entries(settings: Settings) -> dict:
    return {
        "host-sample": {
            "task": "metrics.host_sample",
            "schedule": settings.host_sample_interval,
            "options": {"queue": "metrics", "expires": settings.host_sample_interval},
        },
        "reachability": {
            "task": "assets.check_reachability",
            "schedule": settings.reachability_interval,
            "options": {"queue": "discovery", "expires": settings.reachability_interval},
        },
        "containers-reconcile": {"task": "containers.reconcile", "schedule": settings.containers_reconcile_interval, "options": {"queue": "discovery", "expires": settings.containers_reconcile_interval}},
        "containers-probe": {"task": "containers.probe", "schedule": settings.reachability_interval, "options": {"queue": "discovery", "expires": settings.reachability_interval}},
        "sync-config": {
            "task": "assets.sync_config",
            "schedule": 300.0,
            "options": {"queue": "discovery"},
        },
        "redeliver-lost-tasks": {
            "task": "maintenance.redeliver",
            "schedule": settings.redeliver_interval,
            "options": {"queue": "maintenance", "expires": settings.redeliver_interval},
        },
        "schema-checks": {"task": "schema.check_due", "schedule": 30.0, "options": {"queue": "schema", "expires": 30.0}},
        "prune-old-data": {
            "task": "maintenance.prune",
            "schedule": 3600.0,
            "options": {"queue": "maintenance"},
        },
        **alerting_schedule.entries(settings),
    }
