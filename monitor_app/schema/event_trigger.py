"""The PostgreSQL event trigger that makes detection instant, and installing/removing it.

The trigger function does one thing: `pg_notify` with the command tag, one object identity,
the session user and application name. It is SECURITY DEFINER with a fixed search_path
and swallows every exception, so it can neither abort nor noticeably slow the user's DDL.
NOTIFY is transactional: rolled-back or failed DDL never notifies. Everything lives in the
`_dbmon` schema, which snapshots ignore, so installing the trigger is not itself a change.
"""

from __future__ import annotations

import psycopg2

from monitor_app.errors import DbmonError
from monitor_app.schema.postgres_snapshot import DBMON_SCHEMA, connect

CHANNEL = "dbmon_schema"
FUNCTION = f"{DBMON_SCHEMA}.notify_schema_change"
TRIGGERS = {"dbmon_schema_ddl_end": "ddl_command_end", "dbmon_schema_sql_drop": "sql_drop"}

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  identity text;
  n integer := 0;
BEGIN
  BEGIN
    IF TG_EVENT = 'sql_drop' THEN
      SELECT min(object_identity), count(*) INTO identity, n FROM pg_event_trigger_dropped_objects();
    ELSE
      SELECT min(object_identity), count(*) INTO identity, n FROM pg_event_trigger_ddl_commands();
    END IF;
    PERFORM pg_notify('{CHANNEL}', json_build_object(
      'tag', TG_TAG, 'event', TG_EVENT, 'object', left(identity, 512), 'objects', n,
      'user', session_user, 'application_name', current_setting('application_name', true),
      'at', clock_timestamp())::text);
  EXCEPTION WHEN OTHERS THEN
    NULL;  -- a monitoring hook must never break the DDL it watches
  END;
END
$fn$"""  # nosec B608 # schema, function and channel names are module constants


class TriggerError(DbmonError):
    pass


def is_superuser(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cur.fetchone()
    return bool(row and row[0])


def installed(conn) -> bool:
    with conn.cursor() as cur:
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
    """Create (or refresh) the function and both event triggers in one transaction."""

    def run(conn):
        _outside_transaction(conn)
        if not is_superuser(conn):
            raise TriggerError("installing the schema event trigger needs a superuser; "
                               "without one dbmon falls back to scheduled checks", permanent=True)
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {DBMON_SCHEMA}")
                cur.execute(f"REVOKE ALL ON SCHEMA {DBMON_SCHEMA} FROM PUBLIC")
                cur.execute(FUNCTION_SQL)
                cur.execute(f"REVOKE ALL ON FUNCTION {FUNCTION}() FROM PUBLIC")
                for name, event in TRIGGERS.items():
                    cur.execute(f"DROP EVENT TRIGGER IF EXISTS {name}")
                    cur.execute(f"CREATE EVENT TRIGGER {name} ON {event} EXECUTE FUNCTION {FUNCTION}()")
            conn.commit()
            conn.autocommit = True
        except psycopg2.Error as exc:
            conn.rollback()
            raise TriggerError(f"installing the schema event trigger failed: {str(exc).strip()}") from None

    _with_conn(dsn_or_conn, run)


def uninstall(dsn_or_conn) -> bool:
    """Remove the triggers, the function and the `_dbmon` schema; True if anything was there."""

    def run(conn):
        _outside_transaction(conn)
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_event_trigger WHERE evtname = ANY(%s)", (list(TRIGGERS),))
                present = cur.fetchone()[0] > 0
                cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (DBMON_SCHEMA,))
                present = present or cur.fetchone()[0] > 0
                for name in TRIGGERS:
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

    return _with_conn(dsn_or_conn, run)
