"""MySQL and MariaDB metrics of one asset: the body of a `metrics.mysql` task, free of Celery.

Every asset of engine `mysql` or `mariadb` with credentials is polled at the fast tier's
interval (`metrics.fast_interval`, per asset too), at its own slot. A poll is one connection in
one of the server's budget slots, kept for the next poll of the same server by this process
while another slot is free (`kept_connections`), and four short statements (variables with the
server's clock, status, InnoDB's deadlock counter, the replica status); every `medium_interval`
it also ranks statement digests when performance_schema is on. Counters become the interval's
rates (`counter_rates`: a restart, a `FLUSH STATUS` or a counter going back drops the interval).

A part of a poll the server refuses or times out (the replica status without REPLICATION
CLIENT, digests without SELECT on performance_schema) loses that part only and is reported
as the collector's status; a poll that cannot connect or read the status at all is reported as
`metrics.mysql.check_failed` (`check_recovered` when it works again) and raised as permanent:
the next slot is the retry. A poll that finds no free budget slot within half its interval is
deferred (`BudgetExhausted`), not a failure. A replica's last error is a sample every poll and,
when its text changes, an event: `mysql.replication_error` (warning),
`mysql.replication_error_cleared` (info) once it is gone.
"""

from __future__ import annotations

from datetime import datetime

import pymysql

from monitor_app.assets import mysql_transport
from monitor_app.assets.connection_budget import BudgetExhausted
from monitor_app.assets.login_target import login_target, loginable
from monitor_app.errors import DbmonError
from monitor_app.metrics import mysql_reading as r
from monitor_app.metrics import pg_polling
from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.kept_connections import idle_seconds_for
from monitor_app.metrics.mysql_connection import (CLIENT_ERRORS, SessionLimits, connect, connection_identity,
                                                  failure_reason, server_of)
from monitor_app.metrics.mysql_digests import DIGESTS_SQL, parse, rank, since
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.platform.event_log import record_event
from monitor_app.store.base import iso, utcnow
from monitor_app.store.models import Asset

POLLS = PollTier("mysql", "metrics.mysql")
TASK = "metrics.mysql"
ENGINES = ("mysql", "mariadb")
MAX_EVENTS = 20
MAX_DIGEST_ROWS = 500  # statements_tracked's ceiling
HINTS = {"replication": "grant REPLICATION CLIENT, or on MariaDB 10.5 and later SLAVE MONITOR",
         "statements": "grant SELECT ON performance_schema.*", "deadlocks": "grant PROCESS"}


def due_assets(rt, now: datetime | None = None) -> list[int]:
    """MySQL and MariaDB assets with credentials whose slot has come since they were last sent; marked sent."""
    settings, now = rt.config.metrics, now or utcnow()
    with rt.store.session() as s:
        rows = POLLS.candidates(s, Asset.engine, Asset.connection, where=(Asset.engine.in_(ENGINES),))
        return POLLS.mark_due(s, ((asset_id, settings.fast_interval_for(name), sent, polled)
                                  for asset_id, name, engine, connection, sent, polled in rows
                                  if loginable(engine, connection, ENGINES) and settings.for_asset(name).enabled), now)


def dispatch_due(rt, now: datetime | None = None) -> dict:
    now = now or utcnow()
    due = due_assets(rt, now)
    rt.dispatch_many(TASK, [{"asset_id": asset_id, "due_at": iso(now)} for asset_id in due])
    return {"dispatched": len(due), "asset_ids": due}


def run_mysql_poll(rt, asset_id: int, now: datetime | None = None, *, due_at: str | None = None) -> dict:
    """Poll one MySQL or MariaDB asset and store what it read; a failure is reported, then raised as permanent."""
    settings = rt.config.metrics
    with rt.store.session() as s:
        _, name, connection, password = login_target(s, asset_id, rt.credentials, ENGINES)
        kept = dict(POLLS.state(s, asset_id).counters or {})
    now = now or utcnow()
    poll_interval = settings.fast_interval_for(name)
    if pg_polling.stale(due_at, poll_interval, now):
        return {"asset_id": asset_id, "skipped": "a later poll superseded this one"}
    limits = SessionLimits(rt.settings.probe_timeout, settings.statement_timeout, settings.lock_timeout,
                           idle_seconds_for(poll_interval))
    digests_from = since(kept.get("digests")) if _digests_due(kept, now, settings.medium_interval_for(name)) else None
    try:
        reading, digest_rows = rt.mysql_sessions.run(
            server_of(connection), connection_identity(connection, password),
            lambda: connect(connection, password, limits),
            lambda conn: read_mysql(conn, digests_from, settings.statements_tracked), idle_seconds=limits.idle_seconds,
            # A slot that comes later than half an interval serves the next poll.
            wait=min(rt.connection_budget.wait, poll_interval / 2))
    except BudgetExhausted:
        raise  # deferred: the server has no slot to spare; not a failure of the target
    except (DbmonError, TypeError, *mysql_transport.DRIVER_ERRORS) as exc:
        # Not only MySQL's errors: an answer that is not what MySQL sends (a proxy, a fork) makes
        # the driver raise what its parsing met.
        error = exc.message if isinstance(exc, DbmonError) else failure_reason(exc)
        with rt.store.session() as s:
            POLLS.report(rt, s, asset_id, name, error)
        raise DbmonError(error, permanent=True) from None
    return _store(rt, asset_id, name, reading, digest_rows, kept, now)


def _digests_due(kept: dict, now: datetime, every: float) -> bool:
    try:
        last = datetime.fromisoformat(str(kept["digests_read_at"]))
    except (KeyError, ValueError):
        return True
    return (now - last).total_seconds() >= every or last > now


def read_mysql(conn, digests_from: float | None, tracked: int) -> tuple[r.MysqlReading, list | None]:
    """One poll's statements on a connection: the variables and status must be read, the rest
    may fail alone. Digests (rows of DIGESTS_SQL, or None) only when `digests_from` is given."""
    reading = r.MysqlReading()
    with conn.cursor() as cur:
        cur.execute(r.VARIABLES_SQL)
        r.read_variables(cur.fetchone(), reading)
        cur.execute(r.STATUS_SQL)
        r.read_status(cur.fetchall(), reading)
        rows = _group(reading, "deadlocks", lambda: _dicts(cur, r.DEADLOCKS_SQL[reading.flavor]), quiet=True)
        r.read_deadlocks(rows or [], reading)
        reading.replication = _group(reading, "replication", lambda: _replica_rows(cur, reading.flavor))
        if digests_from is None or r.statements_state(reading) is not None:
            return reading, None
        digests = _group(reading, "statements", lambda: _rows(cur, DIGESTS_SQL, (digests_from, tracked)))
    return reading, digests


def _group(reading: r.MysqlReading, name: str, step, *, quiet: bool = False):
    """`step()`, or None when the server refused it (privileges, a statement it does not know,
    its statement timeout): a problem of the poll, or with `quiet` a note. A connection that
    failed is not the group's: it fails the poll."""
    try:
        return step()
    except pymysql.err.MySQLError as exc:
        if isinstance(exc, pymysql.err.InterfaceError) or not exc.args or exc.args[0] in CLIENT_ERRORS:
            raise
        reason = failure_reason(exc)
        hint = f" ({HINTS[name]})" if reason.startswith("missing privileges") and name in HINTS else ""
        (reading.notes if quiet else reading.problems).append(f"{name}: {reason}{hint}")
        return None


def _rows(cur, sql: str, params=None) -> list:
    cur.execute(sql, params)
    return list(cur.fetchmany(MAX_DIGEST_ROWS))


def _dicts(cur, sql: str) -> list[dict]:
    cur.execute(sql)
    names = [str(d[0]) for d in (cur.description or ())]
    return [dict(zip(names, row, strict=False)) for row in cur.fetchmany(r.MAX_ROWS)]


def _replica_rows(cur, flavor: str) -> list[dict]:
    """The replica status in the newest form the server knows: the older names only on a syntax error."""
    first, older = r.REPLICATION_SQL[flavor]
    try:
        return _dicts(cur, first)
    except pymysql.err.ProgrammingError as exc:
        if exc.args and exc.args[0] == 1064:
            return _dicts(cur, older)
        raise


def _store(rt, asset_id: int, name: str, reading: r.MysqlReading, digest_rows: list | None, kept: dict,
           now: datetime) -> dict:
    previous = CounterPoll.from_json(kept.get("poll"))
    started = r.life(previous.started if previous else None, reading.server_now, reading.status.get("Uptime"))
    flushed = r.life(previous.reset if previous else None, reading.server_now,
                     reading.status.get("Uptime_since_flush_status"))
    at = reading.server_now if reading.server_now is not None else now.timestamp()
    current = CounterPoll(at, started, flushed, r.counters(reading))
    span, dropped = interval(previous, current)
    found = r.channels(reading.replication) if reading.replication is not None else None
    measured = r.gauges(reading, started) + (r.replication_gauges(found) if found is not None else [])
    if span is not None:
        measured += [(metric, value, {}) for metric, value in r.derived(span)]
    state = {**kept, "poll": current.as_json()}
    statements = r.statements_state(reading)
    if statements is not None:
        measured.append(("mysql.statements_available", 0.0, {}))
    elif digest_rows is not None:
        ranked, state["digests"], statements = rank(parse(digest_rows), kept.get("digests"), at, started,
                                                    rt.config.metrics.statements_top, rt.config.metrics.statements_tracked)
        state["digests_read_at"] = iso(now)
        measured += ranked + [("mysql.statements_available", 1.0, {})]
    elif any(p.startswith("statements:") for p in reading.problems):
        statements = "not available: " + next(p for p in reading.problems if p.startswith("statements:"))
        measured.append(("mysql.statements_available", 0.0, {}))
    else:
        statements = "not due"
    earlier = kept.get("replication_errors")
    errors_before: dict = earlier if isinstance(earlier, dict) else {}
    if found is not None:
        state["replication_errors"] = {c.name: c.error for c in found}
    samples = [SeriesSample(asset_id, metric, value, now, labels) for metric, value, labels in measured]

    def update(session, row) -> None:
        row.polled_at, row.counters = now, state
        if found is not None:
            _replication_events(session, asset_id, name, errors_before, found, now)

    POLLS.store(rt, asset_id, name, samples, "; ".join(reading.problems) or None, update)
    return {"asset_id": asset_id, "samples": len(samples), "engine": reading.flavor,
            "version": str(reading.variables.get("version") or "")[:100], "rates": dropped or "interval",
            "statements": statements, "problems": reading.problems, "notes": reading.notes,
            "replication": ("not readable" if found is None else f"{len(found)} channels" if found
                            else "not a replica")}


def _replication_events(session, asset_id: int, name: str, before: dict, found: list[r.Channel],
                        now: datetime) -> None:
    """An event per channel whose last error text changed: a new error, or the error gone."""
    changed = [c for c in found if c.error != str(before.get(c.name) or "")]
    for c in changed[:MAX_EVENTS]:
        payload = {"asset": name, "channel": c.name, "error": c.error, "io_errno": c.io_errno,
                   "sql_errno": c.sql_errno, "io_running": c.io_running, "sql_running": c.sql_running}
        if c.error:
            record_event(session, type="mysql.replication_error", severity="warning", asset_id=asset_id,
                         summary=f"{name}: replication channel {c.name} failed: {c.error[:200]}",
                         payload=payload, observed_at=now)
        else:
            record_event(session, type="mysql.replication_error_cleared", severity="info", asset_id=asset_id,
                         summary=f"{name}: replication channel {c.name} has no error any more",
                         payload=payload, observed_at=now)
