"""The PostgreSQL fast tier of one asset: the body of the `metrics.pg_fast` task, free of Celery.

Every PostgreSQL asset with credentials is polled (no configuration needed), each at its own
slot in its interval (`platform.spread`). A poll reads through a kept connection
(`pg_sessions`), writes gauges, raw counters and the rates of the interval since the last poll
(`counter_rates`: a reset or restart drops the interval), and reports to collector health: a
target that times out, refuses or lacks privileges becomes one `metrics.pg_fast.check_failed`
event, its recovery one `metrics.pg_fast.check_recovered`. A failing poll never raises past the
task boundary into a retry: the next slot is a few seconds away.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg2

from monitor_app.assets.connection_budget import BudgetExhausted, server_key
from monitor_app.assets.login_target import loginable, login_target
from monitor_app.errors import DbmonError
from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.pg_fast_queries import prepare_fast, read_fast
from monitor_app.metrics.pg_reading import PgReading, UnsupportedServer
from monitor_app.metrics.pg_fast_rates import derived
from monitor_app.metrics.pg_sessions import connection_key
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.schema.check import postgres_dsn
from monitor_app.store.base import iso, utcnow
from monitor_app.store.models import Asset

POLLS = PollTier("pg_fast", "metrics.pg_fast")
APPLICATION_NAME = "dbmon-metrics"
FAILURE_KINDS = (("timeout", ("timeout expired", "canceling statement due to statement timeout", "timed out")),
                 ("refused", ("connection refused", "could not connect", "no such file or directory",
                              "terminating connection", "server closed the connection", "the database system is")),
                 ("missing privileges", ("permission denied", "must be superuser", "password authentication failed",
                                         "no pg_hba.conf entry")))


def due_assets(rt, now: datetime | None = None) -> list[int]:
    """PostgreSQL assets whose slot has come since they were last sent; they are marked sent."""
    settings, now = rt.config.metrics, now or utcnow()
    with rt.store.session() as s:
        rows = POLLS.candidates(s, Asset.engine, Asset.connection,
                                where=(Asset.engine == "postgresql", Asset.kind == "database"))
        return POLLS.mark_due(s, ((asset_id, settings.fast_interval_for(name), sent, polled)
                                  for asset_id, name, engine, connection, sent, polled in rows
                                  if loginable(engine, connection) and settings.for_asset(name).enabled), now)


def dispatch_due(rt, now: datetime | None = None) -> dict:
    now = now or utcnow()
    due = due_assets(rt, now)
    rt.dispatch_many("metrics.pg_fast", [{"asset_id": asset_id, "due_at": iso(now)} for asset_id in due])
    return {"dispatched": len(due), "asset_ids": due}


def failure_reason(exc: BaseException) -> str:
    """`<kind>: <first line>`, kind one of timeout, refused, missing privileges, error."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]
    lowered = text.lower()
    for kind, markers in FAILURE_KINDS:
        if any(marker in lowered for marker in markers):
            return f"{kind}: {text}"
    return f"error: {text}"


def _connector(dsn: str, settings, timeout: float):
    # At least 1 ms each: 0 would mean no timeout at all.
    options = (f"-c statement_timeout={max(1, int(settings.statement_timeout * 1000))} "
               f"-c lock_timeout={max(1, int(settings.lock_timeout * 1000))}")

    def connect():
        try:
            conn = psycopg2.connect(dsn, connect_timeout=max(1, int(timeout)), application_name=APPLICATION_NAME,
                                    options=options)
        except psycopg2.Error as exc:
            raise DbmonError(failure_reason(exc)) from None
        conn.autocommit = True
        try:
            prepare_fast(conn)
        except psycopg2.Error as exc:
            conn.close()
            raise DbmonError(failure_reason(exc)) from None
        return conn

    return connect


def run_poll(rt, asset_id: int, *, due_at: str | None = None, now: datetime | None = None) -> dict:
    """Poll one asset's fast tier and store what it read; a failure is reported, then raised as permanent."""
    settings = rt.config.metrics
    with rt.store.session() as s:
        _, name, connection, password = login_target(s, asset_id, rt.credentials)
        previous = CounterPoll.from_json(POLLS.state(s, asset_id).counters)
    poll_interval = settings.fast_interval_for(name)
    if due_at and _stale(due_at, poll_interval, now or utcnow()):
        return {"asset_id": asset_id, "skipped": "a later poll superseded this one"}
    dsn = postgres_dsn(connection, password)
    try:
        reading = rt.pg_sessions.run(server_key(connection), connection_key(dsn), "metrics fast tier",
                                     _connector(dsn, settings, rt.settings.probe_timeout), read_fast,
                                     # A slot that comes later than half an interval serves the next poll.
                                     wait=min(rt.connection_budget.wait, poll_interval / 2))
    except BudgetExhausted:
        raise  # deferred: the server has no slot to spare; not a failure of the target
    except (DbmonError, psycopg2.Error, UnsupportedServer, TypeError, ValueError) as exc:
        # TypeError and ValueError: an answer that is not what PostgreSQL sends (a proxy, a fork).
        error = exc.message if isinstance(exc, DbmonError) else failure_reason(exc)
        with rt.store.session() as s:
            POLLS.report(rt, s, asset_id, name, error)
        # Permanent for the task: retrying a 10 s poll only piles up behind the next one.
        raise DbmonError(error, permanent=True) from None
    return _store(rt, asset_id, name, reading, previous, now or utcnow())


def _stale(due_at: str, poll_interval: float, now: datetime) -> bool:
    try:
        due = datetime.fromisoformat(due_at)
    except ValueError:
        return False
    return now - due > timedelta(seconds=poll_interval)


def _store(rt, asset_id: int, name: str, reading: PgReading, previous: CounterPoll | None, now: datetime) -> dict:
    counters = dict(reading.counters)
    if reading.wal_position is not None:
        counters["wal_position"] = reading.wal_position
    current = CounterPoll(now.timestamp(), reading.started, reading.stats_reset, counters)
    span, dropped = interval(previous, current)
    samples = [SeriesSample(asset_id, metric, value, now, labels) for metric, value, labels in reading.gauges]
    samples += [SeriesSample(asset_id, f"pg.{counter}", value, now) for counter, value in reading.counters.items()]
    if span is not None:
        samples += [SeriesSample(asset_id, metric, value, now) for metric, value in derived(span)]
    def update(_session, state) -> None:
        state.polled_at, state.counters = now, current.as_json()

    POLLS.store(rt, asset_id, name, samples, "; ".join(reading.problems) or None, update)
    return {"asset_id": asset_id, "samples": len(samples), "version": reading.version,
            "rates": dropped or "interval", "problems": reading.problems}

