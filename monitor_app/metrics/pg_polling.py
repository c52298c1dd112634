"""How every PostgreSQL metrics tier polls one asset: through a kept connection inside the
server's connection budget (`kept_connections`), with its own timeouts, and with a failure
reported by kind. A kept connection the server closed (a restart, a terminated backend) is
replaced once, silently; a statement or lock timeout is reported, not tried again.

A tier's connection sets `application_name` (so dbmon's sessions are left out of what any tier
reports), `statement_timeout`, `lock_timeout` and `search_path=pg_catalog`: the database's owner
decides the default search_path and could shadow a catalogue view or function with one that runs
as dbmon's role. The fast tier's statements are prepared on every new connection, whichever
tier opened it, so the tiers share one kept connection per server and process.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Callable, TypeVar

import psycopg2

from monitor_app.assets.connection_budget import BudgetExhausted, server_key
from monitor_app.assets.login_target import loginable
from monitor_app.errors import DbmonError
from monitor_app.metrics.kept_connections import KeepPolicy
from monitor_app.metrics.pg_fast_queries import prepare_fast
from monitor_app.metrics.pg_reading import UnsupportedServer
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.schema.check import postgres_dsn
from monitor_app.store.base import iso, utcnow
from monitor_app.store.models import Asset

T = TypeVar("T")
APPLICATION_NAME = "dbmon-metrics"
FAILURE_KINDS = (("timeout", ("timeout expired", "canceling statement due to statement timeout", "timed out")),
                 ("refused", ("connection refused", "could not connect", "no such file or directory",
                              "terminating connection", "server closed the connection", "the database system is")),
                 ("missing privileges", ("permission denied", "must be superuser", "password authentication failed",
                                         "no pg_hba.conf entry",
                                         "not allowed")))  # PgBouncer's console, to a role it does not list


def due_assets(rt, tier: PollTier, interval_for: Callable[[str], float], now: datetime | None = None,
               *, engine: str = "postgresql") -> list[int]:
    """Assets of `engine` with credentials whose slot in `interval_for(name)` has come since they
    were last sent; they are marked sent."""
    settings, now = rt.config.metrics, now or utcnow()
    with rt.store.session() as s:
        rows = tier.candidates(s, Asset.engine, Asset.connection, where=(Asset.engine == engine,))
        return tier.mark_due(s, ((asset_id, interval_for(name), sent, polled)
                                 for asset_id, name, engine_, connection, sent, polled in rows
                                 if loginable(engine_, connection, (engine,)) and settings.for_asset(name).enabled),
                             now)


def dispatch_due(rt, task: str, tier: PollTier, interval_for: Callable[[str], float],
                 now: datetime | None = None, *, engine: str = "postgresql") -> dict:
    now = now or utcnow()
    due = due_assets(rt, tier, interval_for, now, engine=engine)
    rt.dispatch_many(task, [{"asset_id": asset_id, "due_at": iso(now)} for asset_id in due])
    return {"dispatched": len(due), "asset_ids": due}


def failure_reason(exc: BaseException) -> str:
    """`<kind>: <first line>`, kind one of timeout, refused, missing privileges, error."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]
    lowered = text.lower()
    for kind, markers in FAILURE_KINDS:
        if any(marker in lowered for marker in markers):
            return f"{kind}: {text}"
    return f"error: {text}"


def connector(dsn: str, settings, timeout: float):
    # At least 1 ms each: 0 would mean no timeout at all.
    options = (f"-c statement_timeout={max(1, int(settings.statement_timeout * 1000))} "
               f"-c lock_timeout={max(1, int(settings.lock_timeout * 1000))} -c search_path=pg_catalog")

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


def _closed(conn) -> bool:
    return bool(getattr(conn, "closed", True))


def _connection_lost(exc: BaseException, conn) -> bool:
    """The kept connection was dead before the poll: the server closed it (a restart, a terminated
    backend), which psycopg2 shows by marking it closed. A statement or lock timeout is an
    OperationalError too, on a connection still open: not tried again, which would only double
    the load on a server already too slow."""
    return isinstance(exc, psycopg2.InterfaceError) or (isinstance(exc, psycopg2.OperationalError) and _closed(conn))


# How the tiers' kept connections (`Runtime.pg_sessions`) are closed and replaced.
KEEP_POLICY = KeepPolicy(engine="postgresql", gone=_closed, stale=_connection_lost)


def connection_key(dsn: str) -> str:
    """A kept connection's key: its DSN, password included, without holding the password."""
    return hashlib.sha256(dsn.encode()).hexdigest()


def stale(due_at: str | None, poll_interval: float, now: datetime) -> bool:
    """A poll sent longer than an interval ago: a later one has superseded it."""
    if not due_at:
        return False
    try:
        due = datetime.fromisoformat(due_at)
    except ValueError:
        return False
    return now - due > timedelta(seconds=poll_interval)


def read_target(rt, tier: PollTier, asset_id: int, name: str, connection: dict, password: str | None,
                purpose: str, reader: Callable[[object], T], poll_interval: float) -> T:
    """`reader(conn)` on the asset's kept connection; a failure is reported under the tier's
    collector, then raised as permanent (retrying a poll only piles it up behind the next one)."""
    dsn = postgres_dsn(connection, password)
    try:
        return rt.pg_sessions.run(server_key(connection), connection_key(dsn),
                                  connector(dsn, rt.config.metrics, rt.settings.probe_timeout), reader,
                                  purpose=purpose,
                                  # A slot that comes later than half an interval serves the next poll.
                                  wait=min(rt.connection_budget.wait, poll_interval / 2))
    except BudgetExhausted:
        raise  # deferred: the server has no slot to spare; not a failure of the target
    except (DbmonError, psycopg2.Error, UnsupportedServer, TypeError, ValueError) as exc:
        # TypeError and ValueError: an answer that is not what PostgreSQL sends (a proxy, a fork).
        error = exc.message if isinstance(exc, DbmonError) else failure_reason(exc)
        with rt.store.session() as s:
            tier.report(rt, s, asset_id, name, error)
        raise DbmonError(error, permanent=True) from None
