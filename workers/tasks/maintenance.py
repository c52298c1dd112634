"""Housekeeping: re-send lost tasks, notice silent host samplers, prune data past retention."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from monitor_app.analysis import series_watch
from monitor_app.files import runs as file_runs
from monitor_app.metrics import sample_store
from monitor_app.metrics.host_liveness import silent_samplers
from monitor_app.platform.runtime import Runtime
from monitor_app.store.base import utcnow
from monitor_app.store.models import MetricSample, TaskRun
from workers.task_base import dbmon_task

FINISHED_RUN_RETENTION = timedelta(days=7)


@dbmon_task("maintenance.redeliver", time_limit=60)
def redeliver(rt: Runtime) -> dict:
    return rt.ledger.redeliver(rt.sender)


@dbmon_task("maintenance.check_host_samplers", time_limit=30)
def check_host_samplers(rt: Runtime) -> dict:
    """On the maintenance queue, not the samplers' own: a stuck metrics queue is what it must notice."""
    with rt.store.session() as s:
        silent = silent_samplers(s, utcnow(), rt.settings.host_sample_interval,
                                 rt.settings.host_sampler_missed_intervals)
    return {"down": silent}


@dbmon_task("maintenance.prune", time_limit=600)
def prune(rt: Runtime) -> dict:
    now = utcnow()
    with rt.store.session() as s:
        samples = s.execute(delete(MetricSample).where(
            MetricSample.at < now - timedelta(days=rt.settings.metrics_retention_days))).rowcount
        runs = s.execute(delete(TaskRun).where(
            TaskRun.status.in_(("done", "failed")), TaskRun.finished_at < now - FINISHED_RUN_RETENTION)).rowcount
        analysis = series_watch.prune(s, now, timedelta(days=rt.settings.metrics_retention_days))
        files = file_runs.prune(s, now, timedelta(days=rt.settings.metrics_retention_days))
    series = sample_store.prune(rt.store, now, timedelta(hours=rt.settings.metrics_raw_retention_hours),
                                timedelta(days=rt.settings.metrics_retention_days))
    return {"metric_samples": samples, "task_runs": runs, **{f"metric_{k}": v for k, v in series.items()},
            **analysis, **files}
