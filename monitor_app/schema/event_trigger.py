"""The PostgreSQL event trigger that makes detection instant, and installing/removing it.

One event trigger on `ddl_command_start` calls one small function that sends `pg_notify` with
the command tag. NOTIFY is transactional: rolled-back or failed DDL never notifies, and
PostgreSQL delivers one notification per distinct tag and transaction, at its commit. The
function names every function by schema, so the caller's search_path cannot change what it
runs, and it does nothing that needs a privilege: it runs as whoever runs the DDL. Everything
lives in the `_dbmon` schema, which snapshots ignore, so installing the trigger is not itself a
change.

A notification says only "check now" and which command; who sent it comes from the server
(the notification carries the sending backend's pid, set by PostgreSQL, which the listener
looks up), so nothing in it needs signing. Any user may NOTIFY the channel; that costs one
bounded, coalesced check, attributed to that user's session.

Every user's DDL, a superuser's included, runs the function. Whoever owns it or its schema
could rewrite it and act with the rights of the next superuser who runs DDL, so an install
refuses any `_dbmon` object it did not create itself, and checks the result before committing
(`trigger_integrity`).
"""

from __future__ import annotations

from contextlib import contextmanager

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import TRANSACTION_STATUS_INERROR

from monitor_app.errors import DbmonError
from monitor_app.schema.postgres_snapshot import DBMON_SCHEMA, connect

CHANNEL = "dbmon_schema"
FUNCTION_NAME = "notify_schema_change"
FUNCTION = f"{DBMON_SCHEMA}.{FUNCTION_NAME}"
TRIGGERS = {"dbmon_schema_ddl_start": "ddl_command_start"}
# What releases before the single ddl_command_start trigger installed; an install drops them.
EARLIER_TRIGGERS = ("dbmon_schema_ddl_end", "dbmon_schema_sql_drop")
# The signed releases' sender and signing key; an install drops them (see `trigger_integrity`).
EARLIER_SENDER = f"{DBMON_SCHEMA}.send_schema_notification(pg_catalog.text)"
EARLIER_KEY_TABLE = f"{DBMON_SCHEMA}.notify_key"
SEARCH_PATH = "pg_catalog, pg_temp"
EVENT = "ddl_command_start"

# Why `ddl_command_start` alone: an event trigger on `ddl_command_end`, `sql_drop` or
# `table_rewrite` makes PostgreSQL collect every command of every statement (copied parse trees,
# the list of dropped objects) whatever its function does, which on cheap statements cost more
# than the 2 % this hook may take. `ddl_command_start` fires for the same commands, before they
# run, and sets up no collection. NOTIFY is transactional, so a statement that then fails, or a
# transaction or savepoint rolled back, still never notifies; the notification arrives at the
# commit, when the listener's check sees the finished change.
#
# Why so little: a PL/pgSQL event trigger function that does nothing already costs a migration
# about 1 % of its instructions (PostgreSQL looks the function up, sets up PL/pgSQL and, for a
# statement that is its own transaction, a new expression context), and everything beyond that
# is paid per statement. Earlier releases signed a JSON payload with a key in a table, in a
# SECURITY DEFINER sender, caching it in session settings; then a release sent the bare tag but
# kept a per-session quarter-second window in a session setting so that an autocommitting
# session notified at most four times a second. Measured in instructions, each PL/pgSQL
# expression costs a statement that is its own transaction about 4,000 to 9,000 instructions
# (0.4 to 0.9 %), since its evaluation state is rebuilt in every transaction, while a
# notification itself (queued, then the queue lock and entry at commit) costs about 2,700: the
# window's three expressions cost more than the notifications they saved (+3.4 % against
# +1.9 % for a 452-statement autocommitted migration). Setting any setting also made a
# transaction walk all of the server's ~380 settings at every nested level it left before
# PostgreSQL 16. Signing bought nothing the server does not give for free: a notification
# carries the sender's pid, which no session can forge.
#
# So the body is one expression: the notification, tested for NULL (it never is) only because
# an IF evaluates it as a simple expression without assigning its result; an assignment to a
# variable would add a void-to-text cast and a copy (2,000 instructions a statement), PERFORM
# starts the executor. The function is STABLE, which here only tells PL/pgSQL not to take a
# new snapshot and advance the command counter around that expression: it reads nothing, and
# an event trigger function cannot be called from a query, where the label would matter.
FUNCTION_BODY = f"""
BEGIN
  IF pg_catalog.pg_notify('{CHANNEL}', TG_TAG) IS NULL THEN
    RETURN;
  END IF;
END
"""  # nosec B608 # composed only from this module's constant names

FUNCTION_SQL = (f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS event_trigger LANGUAGE plpgsql STABLE "
                f"AS $fn${FUNCTION_BODY}$fn$")


class TriggerError(DbmonError):
    pass


@contextmanager
def pinned_search_path(conn):
    """Run dbmon's own catalogue queries and DDL with only pg_catalog on the search_path.

    A database owner can put `public` first for every session (ALTER DATABASE ... SET
    search_path) and shadow catalogue functions and operators there; a superuser's unqualified
    call would then run the owner's code. The session's own setting is restored afterwards,
    since snapshot text (`regclass`, `format_type`) depends on it. Nested uses pin once."""
    with conn.cursor() as cur:
        cur.execute("SHOW search_path")
        before = cur.fetchone()[0]
        if before != SEARCH_PATH:
            cur.execute(f"SET search_path = {SEARCH_PATH}")
    try:
        yield
    finally:
        failed = conn.closed or conn.info.transaction_status == TRANSACTION_STATUS_INERROR
        if before != SEARCH_PATH and not failed:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (before,))


def is_superuser(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cur.fetchone()
    return bool(row and row[0])


def installed(conn) -> bool:
    with pinned_search_path(conn), conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_event_trigger WHERE evtname = ANY(%s) AND evtenabled <> 'D'",
                    (list(TRIGGERS),))
        return cur.fetchone()[0] == len(TRIGGERS)


def _outside_transaction(conn) -> None:
    if not conn.autocommit:
        conn.rollback()
    conn.autocommit = True


def _with_conn(dsn_or_conn, fn):
    if isinstance(dsn_or_conn, str):
        conn = connect(dsn_or_conn)
        try:
            return fn(conn)
        finally:
            conn.close()
    return fn(dsn_or_conn)


def install(dsn_or_conn) -> None:
    """Create (or refresh) the schema, the function and the event trigger in one transaction,
    dropping what earlier releases installed besides.

    Refuses, changing nothing, when a `_dbmon` object exists that the installing role does not
    own or that is no part of an install, and when the result does not verify."""
    _with_conn(dsn_or_conn, _pinned(_install))


def _pinned(fn):
    def run(conn):
        _outside_transaction(conn)
        with pinned_search_path(conn):
            return fn(conn)
    return run


def _install(conn) -> None:
    from monitor_app.schema import trigger_integrity

    if not is_superuser(conn):
        raise TriggerError("installing the schema event trigger needs a superuser; "
                           "without one dbmon falls back to scheduled checks", permanent=True)
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (FUNCTION,))  # one install at a time
            foreign = trigger_integrity.foreign_objects(cur)
            if foreign:
                raise TriggerError("refusing to install the schema event trigger: " + "; ".join(foreign)
                                   + f". Whoever owns them could run code as the next superuser who runs "
                                     f"DDL; drop them (DROP SCHEMA {DBMON_SCHEMA} CASCADE) after checking "
                                     f"what they are", permanent=True)
            extra = trigger_integrity.extra_objects(cur)
            if extra:
                raise TriggerError("refusing to install the schema event trigger: " + "; ".join(extra)
                                   + f". Schema snapshots do not look into {DBMON_SCHEMA}; move or drop them "
                                     f"after checking what they are", permanent=True)
            # Dropping an event trigger fires none, and the DDL below must not run whatever the
            # function has become; the transaction restores them if the install fails.
            # Those of earlier releases too: an install upgrades to the single trigger.
            for name in (*TRIGGERS, *EARLIER_TRIGGERS):
                cur.execute(f"DROP EVENT TRIGGER IF EXISTS {name}")
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {DBMON_SCHEMA} AUTHORIZATION CURRENT_USER")
            # The signed releases' sender and key: owned by this role (checked above), and the
            # key, if there, a plain table (anything else is refused as not part of an install).
            cur.execute(f"DROP FUNCTION IF EXISTS {EARLIER_SENDER}")
            cur.execute(f"DROP TABLE IF EXISTS {EARLIER_KEY_TABLE}")
            cur.execute(FUNCTION_SQL)
            _revoke_grants(cur, trigger_integrity.foreign_grants(cur))
            for name, event in TRIGGERS.items():
                cur.execute(f"CREATE EVENT TRIGGER {name} ON {event} EXECUTE FUNCTION {FUNCTION}()")
            problems = trigger_integrity.inspect(conn).problems
            if problems:
                raise TriggerError("the installed schema event trigger does not verify: " + "; ".join(problems),
                                   permanent=True)
        conn.commit()
        conn.autocommit = True
    except TriggerError:
        conn.rollback()
        conn.autocommit = True
        raise
    except psycopg2.Error as exc:
        conn.rollback()
        conn.autocommit = True
        raise TriggerError(f"installing the schema event trigger failed: {str(exc).strip()}") from None


def _revoke_grants(cur, grants: list[tuple[str, str, str]]) -> None:
    """Revoke every privilege on dbmon's objects held by anyone but their owner."""
    for kind, obj, grantee in grants:
        target = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
        cur.execute(sql.SQL("REVOKE ALL ON {} {} FROM {}").format(sql.SQL(kind), sql.SQL(obj), target))


def disarm(conn) -> list[str]:
    """Drop dbmon's event triggers (a superuser's job) so no DDL runs a function dbmon no longer trusts."""
    _outside_transaction(conn)
    dropped = []
    with pinned_search_path(conn), conn.cursor() as cur:
        for name in (*TRIGGERS, *EARLIER_TRIGGERS):
            cur.execute("SELECT 1 FROM pg_event_trigger WHERE evtname = %s", (name,))
            if cur.fetchone():
                cur.execute(f"DROP EVENT TRIGGER {name}")
                dropped.append(name)
    return dropped


def uninstall(dsn_or_conn) -> bool:
    """Remove the triggers, the function and the `_dbmon` schema; True if anything was there."""

    def run(conn):
        _outside_transaction(conn)
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                names = [*TRIGGERS, *EARLIER_TRIGGERS]
                cur.execute("SELECT count(*) FROM pg_event_trigger WHERE evtname = ANY(%s)", (names,))
                present = cur.fetchone()[0] > 0
                cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (DBMON_SCHEMA,))
                present = present or cur.fetchone()[0] > 0
                for name in names:
                    cur.execute(f"DROP EVENT TRIGGER IF EXISTS {name}")
                cur.execute(f"DROP SCHEMA IF EXISTS {DBMON_SCHEMA} CASCADE")
            conn.commit()
            conn.autocommit = True
            return present
        except psycopg2.errors.InsufficientPrivilege:
            conn.rollback()
            raise TriggerError("removing the schema event trigger needs a superuser", permanent=True) from None
        except psycopg2.Error as exc:
            conn.rollback()
            raise TriggerError(f"removing the schema event trigger failed: {str(exc).strip()}") from None

    return _with_conn(dsn_or_conn, _pinned(run))
