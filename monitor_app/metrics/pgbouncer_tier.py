"""PgBouncer pools of one asset: the body of the `metrics.pgbouncer` task, free of Celery.

Every PgBouncer asset with credentials (declared with `engine: pgbouncer`, or a discovered
PgBouncer container a credential rule or label hands a login) is polled at the fast tier's
interval, at its own slot. A poll opens a short connection to the admin console (`pgbouncer`
database; the role must be in `stats_users` or `admin_users`): PgBouncer serves it itself, no
server backend is started, so no connection is kept and no budget slot is taken. Failures are
reported as `metrics.pgbouncer.check_failed` / `check_recovered`.
"""

from __future__ import annotations

from datetime import datetime

import psycopg2

from monitor_app.assets.login_target import login_target
from monitor_app.errors import DbmonError
from monitor_app.metrics import pg_polling
from monitor_app.metrics.pgbouncer_reading import read_pgbouncer
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.schema.check import postgres_dsn
from monitor_app.store.base import utcnow

POLLS = PollTier("pgbouncer", "metrics.pgbouncer")
ENGINES = ("pgbouncer",)


def due_assets(rt, now: datetime | None = None) -> list[int]:
    return pg_polling.due_assets(rt, POLLS, rt.config.metrics.fast_interval_for, now, engine="pgbouncer")


def dispatch_due(rt, now: datetime | None = None) -> dict:
    return pg_polling.dispatch_due(rt, "metrics.pgbouncer", POLLS, rt.config.metrics.fast_interval_for, now,
                                   engine="pgbouncer")


def run_poll(rt, asset_id: int, *, due_at: str | None = None, now: datetime | None = None) -> dict:
    """Read one PgBouncer's pools, averages and lists and store them; a failure is reported, then
    raised as permanent."""
    with rt.store.session() as s:
        _, name, connection, password = login_target(s, asset_id, rt.credentials, ENGINES)
    if pg_polling.stale(due_at, rt.config.metrics.fast_interval_for(name), now or utcnow()):
        return {"asset_id": asset_id, "skipped": "a later poll superseded this one"}
    try:
        conn = psycopg2.connect(postgres_dsn(connection, password), connect_timeout=max(1, int(rt.settings.probe_timeout)),
                                application_name=pg_polling.APPLICATION_NAME)
        try:
            conn.autocommit = True
            reading = read_pgbouncer(conn)
        finally:
            conn.close()
    except (psycopg2.Error, TypeError, ValueError) as exc:
        error = pg_polling.failure_reason(exc)
        with rt.store.session() as s:
            POLLS.report(rt, s, asset_id, name, error)
        raise DbmonError(error, permanent=True) from None
    at = now or utcnow()
    samples = [SeriesSample(asset_id, metric, value, at, labels) for metric, value, labels in reading.gauges]

    def update(_session, state) -> None:
        state.polled_at = at

    POLLS.store(rt, asset_id, name, samples, None, update)
    return {"asset_id": asset_id, "samples": len(samples)}
