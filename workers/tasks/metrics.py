"""Host resource samples, the PostgreSQL fast, medium and slow tiers, PgBouncer pools, SQLite files,
Docker stats of database containers, and packing finished hours of series into chunks."""

from __future__ import annotations

import psutil

from monitor_app.platform.collector_health import Attempt, asset_subject, report
from monitor_app.errors import DbmonError
from monitor_app.metrics import (container_tier, host_io, pg_fast, pg_medium, pg_slow, pgbouncer_tier, sample_store,
                                 sqlite_tier)
from monitor_app.metrics.host_liveness import host_asset, sampler_reported
from monitor_app.metrics.host_resources import host_identity, io_counters, sample_host
from monitor_app.platform.runtime import Runtime
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.store.base import utcnow
from monitor_app.store.models import MetricSample
from workers.task_base import dbmon_task


@dbmon_task("metrics.host_sample", time_limit=30)
def host_sample(rt: Runtime) -> dict:
    paths = [rt.settings.data_dir] + [w.path for w in rt.config.watch]
    hostname = host_identity()
    try:
        samples = sample_host(paths)
        counters = io_counters()
    except (OSError, psutil.Error) as exc:
        error = f"sampling the host failed: {type(exc).__name__}: {exc}"
        with rt.store.session() as s:
            host_id = host_asset(s, hostname, utcnow()).id
        report(rt.store, Attempt("host", asset_subject(host_id), host_id, hostname, error),
               rt.settings.collector_failures_before_event)
        raise DbmonError(error) from None
    now = utcnow()
    try:
        with rt.store.session() as s:
            host_id = sampler_reported(s, hostname, now).id
            samples += host_io.rates_since_last(s, host_id, counters, psutil.boot_time(), now)
            s.add_all(MetricSample(name=m.name, asset_id=host_id, value=m.value, labels=m.labels, at=now)
                      for m in samples)
            # As series too: kept in rollups for 90 days, and what forecasts and anomaly rules read.
            rt.series_writer.write_in(s, [SeriesSample(host_id, m.name, m.value, now, m.labels) for m in samples])
    except Exception:
        rt.series_writer.forget()  # series it created in the rolled-back transaction are gone
        raise
    report(rt.store, Attempt("host", asset_subject(host_id), host_id, hostname),
           rt.settings.collector_failures_before_event)
    return {"asset_id": host_id, "samples": {m.name + _suffix(m.labels): m.value for m in samples}}


@dbmon_task("metrics.pg_fast", time_limit=60, max_retries=0)
def pg_fast_poll(rt: Runtime, asset_id: int, due_at: str | None = None) -> dict:
    """Poll one PostgreSQL asset's fast tier: gauges, raw counters and the interval's rates."""
    return pg_fast.run_poll(rt, asset_id, due_at=due_at)


@dbmon_task("metrics.pg_fast_due", time_limit=30)
def pg_fast_due(rt: Runtime) -> dict:
    """Send one fast-tier poll per PostgreSQL asset whose slot in its interval has come."""
    return pg_fast.dispatch_due(rt)


@dbmon_task("metrics.pg_medium", time_limit=120, max_retries=0)
def pg_medium_poll(rt: Runtime, asset_id: int, due_at: str | None = None) -> dict:
    """Poll one PostgreSQL asset's medium tier: top statements, checkpointer, archiver, vacuums."""
    return pg_medium.run_poll(rt, asset_id, due_at=due_at)


@dbmon_task("metrics.pg_medium_due", time_limit=30)
def pg_medium_due(rt: Runtime) -> dict:
    """Send one medium-tier poll per PostgreSQL asset whose slot in its interval has come."""
    return pg_medium.dispatch_due(rt)


@dbmon_task("metrics.pg_slow", time_limit=300, max_retries=0)
def pg_slow_poll(rt: Runtime, asset_id: int, due_at: str | None = None) -> dict:
    """Poll one PostgreSQL asset's slow tier: sizes, vacuum health, unused indexes, wraparound, settings."""
    return pg_slow.run_poll(rt, asset_id, due_at=due_at)


@dbmon_task("metrics.pg_slow_due", time_limit=30)
def pg_slow_due(rt: Runtime) -> dict:
    """Send one slow-tier poll per PostgreSQL asset whose slot in its interval has come."""
    return pg_slow.dispatch_due(rt)


@dbmon_task("metrics.pgbouncer", time_limit=60, max_retries=0)
def pgbouncer_poll(rt: Runtime, asset_id: int, due_at: str | None = None) -> dict:
    """Read one PgBouncer's pools (clients active and waiting, servers, longest wait), averages and lists."""
    return pgbouncer_tier.run_poll(rt, asset_id, due_at=due_at)


@dbmon_task("metrics.pgbouncer_due", time_limit=30)
def pgbouncer_due(rt: Runtime) -> dict:
    """Send one poll per PgBouncer asset whose slot in the fast interval has come."""
    return pgbouncer_tier.dispatch_due(rt)


@dbmon_task("metrics.sqlite", time_limit=660, max_retries=0)
def sqlite_poll(rt: Runtime, asset_id: int) -> dict:
    """Poll one SQLite file: sizes, pages, write transactions, and now and then its integrity."""
    return sqlite_tier.run_poll(rt, asset_id)


@dbmon_task("metrics.sqlite_due", time_limit=30)
def sqlite_due(rt: Runtime) -> dict:
    """Send one poll per SQLite asset whose slot in its interval has come."""
    return sqlite_tier.dispatch_due(rt)


@dbmon_task("metrics.container", time_limit=60, max_retries=0)
def container_poll(rt: Runtime, asset_id: int) -> dict:
    """Docker stats of one database container: CPU, memory, block and network I/O, restarts."""
    from monitor_app.containers.inventory import connect

    return container_tier.run_poll(rt, asset_id, lambda: connect(rt.config.containers.docker_url, timeout=10))


@dbmon_task("metrics.container_due", time_limit=30)
def container_due(rt: Runtime) -> dict:
    """Send one stats poll per container asset whose slot in its interval has come."""
    if not rt.config.containers.enabled:
        return {"skipped": "containers.enabled is false"}
    return container_tier.dispatch_due(rt)


@dbmon_task("metrics.compact", time_limit=600)
def compact(rt: Runtime) -> dict:
    return sample_store.compact(rt.store, utcnow())


def _suffix(labels: dict) -> str:
    label = labels.get("path") or labels.get("engine")
    return f"[{label}]" if label else ""
