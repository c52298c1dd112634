"""The PostgreSQL event trigger that makes detection instant, and installing/removing it.

One event trigger on `ddl_command_start` calls a small function that decides whether to send;
the sender does one thing: `pg_notify` with the command tag, the session user and application
name, signed with a key only its owner can read, once per transaction and at most once per
quarter-second window per session. Both functions are SECURITY DEFINER and name every
function, operator and type by schema; the sender also pins its search_path and swallows every
exception, so neither can abort nor noticeably slow the user's DDL. NOTIFY is transactional:
rolled-back or failed DDL never notifies. Everything lives in the `_dbmon` schema, which
snapshots ignore, so installing the trigger is not itself a change.

Every user's DDL, a superuser's included, runs those functions. Whoever owns them or their
schema could rewrite them and act with the rights of the next superuser who runs DDL, so an
install refuses any `_dbmon` object it did not create itself, and checks the result before
committing (`trigger_integrity`).
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import TRANSACTION_STATUS_INERROR

from monitor_app.errors import DbmonError
from monitor_app.schema.postgres_snapshot import DBMON_SCHEMA, connect

CHANNEL = "dbmon_schema"
FUNCTION_NAME = "notify_schema_change"
FUNCTION = f"{DBMON_SCHEMA}.{FUNCTION_NAME}"
KEY_TABLE_NAME = "notify_key"
KEY_TABLE = f"{DBMON_SCHEMA}.{KEY_TABLE_NAME}"
TRIGGERS = {"dbmon_schema_ddl_start": "ddl_command_start"}
# What releases before the single ddl_command_start trigger installed; an install drops them.
EARLIER_TRIGGERS = ("dbmon_schema_ddl_end", "dbmon_schema_sql_drop")
SENDER_NAME = "send_schema_notification"
SENDER = f"{DBMON_SCHEMA}.{SENDER_NAME}"
SENDER_SIGNATURE = f"{SENDER}(pg_catalog.text)"
SEARCH_PATH = "pg_catalog, pg_temp"
SIGNED_PREFIX = "v1."
SIGNED_LENGTH = len(SIGNED_PREFIX) + 64 + 1  # prefix, hex signature, dot
EVENT = "ddl_command_start"

# Why `ddl_command_start` alone: an event trigger on `ddl_command_end`, `sql_drop` or
# `table_rewrite` makes PostgreSQL collect every command of every statement (copied parse trees,
# the list of dropped objects) whatever its function does, which on cheap statements cost more
# than the 2 % this hook may take. `ddl_command_start` fires for the same commands, before they
# run, and sets up no collection. NOTIFY is transactional, so a statement that then fails, or a
# transaction or savepoint rolled back, still never notifies; the notification arrives at the
# commit, when the listener's check sees the finished change.
#
# The notification is `v1.<hex signature>.<json>`; the signature is
# sha256(key || sha256(key || json)), a keyed hash without length extension that plain
# PostgreSQL can compute (no pgcrypto). The json names the command tag, the session user, the
# application name and the sender's pid, nothing that changes from one statement to the next,
# so the signed payload can be kept in a session setting (`dbmon.notify_<tag>`) and reused
# instead of reading the key and hashing on every statement. The user can overwrite that
# setting, but only to the same json with another signature, which the listener reports as a
# bad signature; anything else is recomputed. The pid is inside, so a replayed copy NOTIFYed
# from another session is told apart (see `notifications`).
#
# Every DDL statement runs the trigger function, so it is split in two. The function the trigger
# calls only decides whether to send, with everything named by schema (so the caller's
# search_path cannot change what it runs, and it needs no search_path of its own: setting and
# restoring one on every call cost a quarter of the budget). Sending is `SENDER`, SECURITY
# DEFINER with the pinned search_path, called about once per transaction or window.
#
# A notification makes its transaction take a database-wide lock and write the queue at commit.
# So a statement that starts before its transaction has an id (every autocommitted statement,
# and the first DDL of a transaction that has written nothing) sends nothing when this session
# already notified within the same window of the clock (NOTIFY_WINDOW_SECONDS long, numbered
# from the epoch; `dbmon.notified_in` holds the window of the last send). Such a statement
# starts at most NOTIFY_WINDOW_SECONDS after a notification the listener receives; the listener
# checks once more that long after the last notification of a burst, and first waits for every
# session that sent one to be outside a transaction, so a long statement or transaction left
# out is seen once it has committed (`listener.Coalescer`). A statement of a transaction that
# has an id sends nothing when the transaction has notified (`dbmon.notified_xact`, set for the
# transaction only: its id, or, when it notified before it had one, 's' and its start time,
# replaced by the id at its next statement): one notification per transaction, delivered at its
# commit. The sender never assigns an id itself: DROP INDEX CONCURRENTLY and the like refuse to
# run in a transaction that has one. Both settings are transactional, so a rolled-back send (a
# savepoint's too) is forgotten with its notification; a value set by the database or role
# default names a window long past or another transaction and suppresses nothing. The window
# is an integer, whose text no setting of the user's session can change. A user who sets them
# to the current window or transaction before each statement silences their own session's
# notifications: their DDL is then found by the next check of any kind (another session's
# burst, the scheduled check).
NOTIFY_WINDOW_SECONDS = 0.25
WINDOW_SETTING = "dbmon.notified_in"
# The number of the clock's current window since the epoch, as text.
WINDOW_NOW = ("pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) "
              f"OPERATOR(pg_catalog./) {NOTIFY_WINDOW_SECONDS}::pg_catalog.float8))::pg_catalog.text")
XACT_SETTING = "dbmon.notified_xact"
XACT_NOW = "pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text"
FUNCTION_BODY = f"""
BEGIN
  IF pg_catalog.pg_current_xact_id_if_assigned() IS NULL THEN
    IF pg_catalog.current_setting('{WINDOW_SETTING}', true) OPERATOR(pg_catalog.=) {WINDOW_NOW} THEN
      RETURN;  -- this session notified in this window: the listener's trailing check covers the statement
    END IF;
  ELSIF pg_catalog.current_setting('{XACT_SETTING}', true) OPERATOR(pg_catalog.=) {XACT_NOW} THEN
    RETURN;  -- this transaction has notified: its commit delivers that notification
  END IF;
  PERFORM {SENDER}(TG_TAG);
END
"""  # nosec B608 # composed only from this module's constant names
SENDER_BODY = f"""
DECLARE
  body pg_catalog.text;
  slot pg_catalog.text;
  payload pg_catalog.text;
  k pg_catalog.bytea;
  this_xact pg_catalog.text;
  started pg_catalog.text;
BEGIN
  this_xact := {XACT_NOW};
  started := 's' OPERATOR(pg_catalog.||) pg_catalog.transaction_timestamp()::pg_catalog.text;
  IF this_xact IS NOT NULL AND pg_catalog.current_setting('{XACT_SETTING}', true) OPERATOR(pg_catalog.=) started THEN
    -- This transaction notified before it had an id; the sender must not assign one, as some
    -- commands refuse to run in a transaction that has one. Remember the id, send no more.
    PERFORM pg_catalog.set_config('{XACT_SETTING}', this_xact, true);
    RETURN;
  END IF;
  PERFORM pg_catalog.set_config('{WINDOW_SETTING}', {WINDOW_NOW}, false);
  PERFORM pg_catalog.set_config('{XACT_SETTING}', COALESCE(this_xact, started), true);
  body := '{{"tag":' OPERATOR(pg_catalog.||) pg_catalog.to_json(tag)
    OPERATOR(pg_catalog.||) ',"event":"{EVENT}","user":' OPERATOR(pg_catalog.||) pg_catalog.to_json(session_user::pg_catalog.text)
    OPERATOR(pg_catalog.||) ',"application_name":' OPERATOR(pg_catalog.||) pg_catalog.to_json(pg_catalog.current_setting('application_name'))
    OPERATOR(pg_catalog.||) ',"pid":' OPERATOR(pg_catalog.||) pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.||) '}}';
  slot := 'dbmon.notify_' OPERATOR(pg_catalog.||) pg_catalog.translate(tag, ' ', '_');
  payload := pg_catalog.current_setting(slot, true);
  IF payload OPERATOR(pg_catalog.=) body OR pg_catalog.starts_with(payload, '{SIGNED_PREFIX}')
      AND pg_catalog.substr(payload, {SIGNED_LENGTH + 1}) OPERATOR(pg_catalog.=) body THEN
    NULL;  -- this session's payload for this tag, already signed
  ELSE
    payload := body;
    BEGIN
      SELECT key INTO k FROM {KEY_TABLE} LIMIT 1;
      IF k IS NOT NULL THEN
        payload := '{SIGNED_PREFIX}' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.sha256(
          k OPERATOR(pg_catalog.||) pg_catalog.sha256(k OPERATOR(pg_catalog.||) pg_catalog.convert_to(body, 'UTF8'))),
          'hex') OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) body;
      END IF;
      PERFORM pg_catalog.set_config(slot, payload, false);
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- a monitoring hook must never break the DDL it watches
    END;
  END IF;
  PERFORM pg_catalog.pg_notify('{CHANNEL}', payload);
END
"""  # nosec B608 # composed only from this module's constant names

SENDER_SQL = (f"CREATE OR REPLACE FUNCTION {SENDER}(tag pg_catalog.text) RETURNS pg_catalog.void LANGUAGE plpgsql "
              f"SECURITY DEFINER SET search_path = {SEARCH_PATH} AS $fn${SENDER_BODY}$fn$")
FUNCTION_SQL = (f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS event_trigger LANGUAGE plpgsql "
                f"SECURITY DEFINER AS $fn${FUNCTION_BODY}$fn$")


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
    """Create (or refresh) the schema, key, both functions and the event trigger in one transaction.

    Refuses, changing nothing, when a `_dbmon` object exists that the installing role does not
    own, and when the result does not verify."""
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
            # Dropping an event trigger fires none, and the DDL below must not run whatever the
            # function has become; the transaction restores them if the install fails.
            # Those of earlier releases too: an install upgrades to the single trigger.
            for name in (*TRIGGERS, *EARLIER_TRIGGERS):
                cur.execute(f"DROP EVENT TRIGGER IF EXISTS {name}")
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {DBMON_SCHEMA} AUTHORIZATION CURRENT_USER")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} (key bytea NOT NULL)")
            cur.execute(f"INSERT INTO {KEY_TABLE} SELECT %s WHERE NOT EXISTS (SELECT 1 FROM {KEY_TABLE})",  # nosec B608 # constant table name
                        (secrets.token_bytes(32),))
            cur.execute(SENDER_SQL)
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
