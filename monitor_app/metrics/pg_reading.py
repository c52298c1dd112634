"""What every PostgreSQL metrics tier shares when it reads a server: one poll's reading, bounded
labels and numbers, and groups of queries that fail alone.

A poll is one read-only transaction; each group of queries runs under its own savepoint, so a
group the role may not read (or that times out) becomes a problem of that poll while the other
groups still count. Everything read from the monitored server is bounded: labels are cut to a
length and a character set, lists to a count, and numbers that are not finite are dropped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import psycopg2

MIN_VERSION = 130000
MAX_ROWS = 100
LABEL_CHARS = 63
LABEL_VALUE = re.compile(r"^[A-Za-z0-9 _.:()/@-]{1,63}$")
# In every statement dbmon's tiers send: `pg_stat_statements` keeps it in the text, and the
# statements that carry it are left out of what the medium tier ranks. Transaction control
# included: `pg_stat_statements` tracks BEGIN, SAVEPOINT and COMMIT too, each on its own even
# when sent in one string with a query, so each carries the mark before its own semicolon.
STATEMENT_MARK = "/* dbmon-metrics */"
BEGIN_READ_ONLY = f"BEGIN READ ONLY {STATEMENT_MARK}; "
GROUP_SAVEPOINT = f"SAVEPOINT metrics_group {STATEMENT_MARK}; "
# dbmon's own sessions are left out of what any tier reports about sessions and statements.
OWN_SESSIONS = "coalesce(application_name, '') NOT LIKE 'dbmon%' AND pid <> pg_backend_pid()"

# What a group may fail with and still leave the poll's other groups standing.
GROUP_ERRORS = (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.QueryCanceled,
                psycopg2.errors.LockNotAvailable, psycopg2.errors.UndefinedFunction,
                psycopg2.errors.UndefinedColumn, psycopg2.errors.UndefinedTable,
                psycopg2.errors.ObjectNotInPrerequisiteState, psycopg2.errors.DataException,
                psycopg2.errors.InvalidSqlStatementName)


@dataclass
class PgReading:
    """One poll's facts: `counters` are raw (for rates), `gauges` are stored as they are."""

    version: int = 0
    started: float | None = None
    stats_reset: float | None = None
    counters: dict[str, float] = field(default_factory=dict)
    wal_position: float | None = None
    gauges: list[tuple[str, float, dict]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def gauge(self, name: str, value, labels: dict | None = None) -> None:
        number = finite(value)
        if number is not None:
            self.gauges.append((name, number, labels or {}))


class UnsupportedServer(Exception):
    """The server is older than 13, or does not say which version it is."""


def finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def label(value) -> str:
    """A label value from the monitored server: printable, short, never empty."""
    text = str(value if value is not None else "")[:LABEL_CHARS]
    return text if LABEL_VALUE.match(text) else (re.sub(r"[^A-Za-z0-9_.:-]", "_", text) or "unnamed")


def text_label(value) -> str:
    """A label for free text (a statement): whitespace collapsed, what a label may not hold
    replaced by `_`, spaces kept so it still reads."""
    text = " ".join(str(value if value is not None else "").split())[:LABEL_CHARS]
    return re.sub(r"[^A-Za-z0-9 _.:()/@-]", "_", text).strip() or "unnamed"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


class Prefixed:
    """A cursor whose next statement is sent together with `prefix` (results are the last
    statement's): BEGIN and SAVEPOINT travel with the query after them, and a round trip saved
    is backend CPU saved."""

    def __init__(self, cur, prefix: str):
        self.cur, self.prefix = cur, prefix

    def execute(self, sql: str, params=None) -> None:
        self.cur.execute(self.prefix + sql, params)
        self.prefix = ""

    def fetchone(self):
        return self.cur.fetchone()

    def fetchall(self):
        return self.cur.fetchall()


def read_group(cur, reading: PgReading, name: str, step) -> None:
    """One group under a savepoint: a refused or timed-out query loses that group only."""
    try:
        step(Prefixed(cur, GROUP_SAVEPOINT), reading)
    except GROUP_ERRORS as exc:
        cur.execute(f"ROLLBACK TO SAVEPOINT metrics_group {STATEMENT_MARK}")
        reading.problems.append(f"{name}: {first_line(exc)}")


def read_transaction(conn, reading: PgReading, first, groups) -> None:
    """`first(cursor, reading)`, which may fail the poll, then each (name, step) group, which
    fails alone, in one read-only transaction on an autocommit connection."""
    with conn.cursor() as cur:
        try:
            first(Prefixed(cur, BEGIN_READ_ONLY), reading)
            for name, step in groups:
                read_group(cur, reading, name, step)
            cur.execute(f"COMMIT {STATEMENT_MARK}")
        except BaseException:
            if not conn.closed:
                try:
                    cur.execute(f"ROLLBACK {STATEMENT_MARK}")
                except psycopg2.Error:
                    pass  # the connection is broken; the caller discards it
            raise
