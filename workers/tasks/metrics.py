"""Host resource samples, the PostgreSQL fast, medium and slow tiers, PgBouncer pools, SQLite files,
Docker stats of database containers, and packing finished hours of series into chunks."""

from __future__ import annotations

from monitor_app.metrics import (container_tier, host_sampling, mysql_tier, pg_fast, pg_medium, pg_slow, pgbouncer_tier,
                                 sample_store, sqlite_tier)
from monitor_app.platform.runtime import Runtime
from monitor_app.store.base import utcnow
from workers.task_base import dbmon_task


@dbmon_task("metrics.host_sample", time_limit=30)
def host_sample(rt: Runtime) -> dict:
    """Sample the host this worker runs on (on demand: each worker host also samples itself on a timer)."""
    return host_sampling.sample_and_store(rt)


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


@dbmon_task("metrics.mysql", time_limit=60, max_retries=0)
def mysql_poll(rt: Runtime, asset_id: int, due_at: str | None = None) -> dict:
    """One MySQL or MariaDB asset's status, InnoDB, replication and (when on) statement digests."""
    return mysql_tier.run_mysql_poll(rt, asset_id, due_at=due_at)


@dbmon_task("metrics.mysql_due", time_limit=30)
def mysql_due(rt: Runtime) -> dict:
    return mysql_tier.dispatch_due(rt)


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
