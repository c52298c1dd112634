"""A database owner who puts `public` before `pg_catalog` for every session and shadows catalogue
functions and operators there gets none of them run by dbmon's superuser session."""

from __future__ import annotations

import time

from monitor_app.schema import event_trigger
from monitor_app.schema.check import run_check
from tests.schema.conftest import OwnedDatabase, add_asset, make_runtime, pg_connection

SHADOWED = {  # signature -> return type; each escalates when a superuser calls it
    "hashtext(text)": "integer", "md5(text)": "text", "pg_get_userbyid(oid)": "name",
    "to_regprocedure(text)": "regprocedure", "to_regclass(text)": "regclass",
    "format_type(oid, integer)": "text", "pg_get_expr(pg_node_tree, oid)": "text",
    "pg_get_constraintdef(oid)": "text", "pg_get_indexdef(oid)": "text", "pg_get_viewdef(oid)": "text",
    "evil_eq(name, name)": "boolean", "evil_oid_eq(oid, oid)": "boolean",
}


def shadow_catalogue_functions(db: OwnedDatabase) -> None:
    escalate = ("LANGUAGE plpgsql AS $$ BEGIN IF (SELECT rolsuper FROM pg_catalog.pg_roles "
                "WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN "
                f"EXECUTE 'ALTER ROLE {db.owner} SUPERUSER'; END IF; RETURN NULL; END $$")
    db.run(f"ALTER DATABASE {db.name} SET search_path = public, pg_catalog",
           *(f"CREATE FUNCTION public.{sig} RETURNS {ret} {escalate}" for sig, ret in SHADOWED.items()),
           "CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.evil_eq)",
           "CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.evil_oid_eq)",
           user=db.owner)


def test_a_hostile_search_path_runs_none_of_the_owners_functions(owned):
    from monitor_app.schema.trigger_upkeep import keep_trigger

    shadow_catalogue_functions(owned)
    event_trigger.install(owned.url)
    conn = owned.connect()
    try:
        assert keep_trigger(conn, was_installed=True).action == "verified"
        owned.run("DROP EVENT TRIGGER dbmon_schema_ddl_start")
        assert keep_trigger(conn, was_installed=True).action == "repaired"
    finally:
        conn.close()
    assert event_trigger.uninstall(owned.url) is True
    assert not owned.owner_is_superuser()


def test_a_check_of_a_hostile_database_runs_none_of_the_owners_functions(owned, sqlite_store, tmp_path):
    shadow_catalogue_functions(owned)
    owned.run("CREATE TABLE orders (id integer PRIMARY KEY, customer text)", user=owned.owner)
    rt = make_runtime(sqlite_store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(sqlite_store, name="hosted-db", engine="postgresql", connection=pg_connection(owned.url))
    first = run_check(rt, asset_id)
    assert first["baseline"] and first["trigger"] == "installed"
    owned.run("ALTER TABLE orders ADD COLUMN total numeric", user=owned.owner)
    assert run_check(rt, asset_id)["changed"]
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "verified"
    assert not owned.owner_is_superuser()


def test_the_listener_runs_none_of_the_owners_functions(owned):
    """A squatted `_dbmon.notify_key` view (the key earlier releases' listeners read) would run
    its owner's code as whoever reads it; the senders' lookup runs with the database's
    search_path, which the owner controls."""
    from monitor_app.schema.listener import SchemaListener

    shadow_catalogue_functions(owned)
    owned.run("CREATE SCHEMA _dbmon",
              "CREATE FUNCTION public.evil_key() RETURNS bytea LANGUAGE plpgsql AS $$ BEGIN "
              "IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN "
              f"EXECUTE 'ALTER ROLE {owned.owner} SUPERUSER'; END IF; RETURN 'x'::bytea; END $$",
              "CREATE FUNCTION public.evil_int_eq(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
              "IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN "
              f"EXECUTE 'ALTER ROLE {owned.owner} SUPERUSER'; END IF; RETURN true; END $$",
              "CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.evil_int_eq)",
              "CREATE VIEW _dbmon.notify_key AS SELECT public.evil_key() AS key",
              "CREATE VIEW public.pg_stat_activity AS SELECT public.evil_key() AS pid", user=owned.owner)
    batches = []
    listener = SchemaListener(owned.url, batches.append, quiet=0.05, max_wait=0.3)
    listener.start()
    try:
        assert listener.listening.wait(5)
        sender = owned.connect()
        try:
            sender.cursor().execute(f"NOTIFY {event_trigger.CHANNEL}, 'CREATE TABLE'")
            deadline = time.monotonic() + 5
            while not any(b.notifications for b in batches) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            sender.close()
        # Found in pg_catalog's view, by pg_catalog's operator.
        assert [b.users for b in batches if b.notifications] == [["postgres"]] and listener.failures == 0
    finally:
        listener.stop()
    assert not owned.owner_is_superuser()


# What the trigger's functions call, shadowed in `public` the same way: the function the trigger
# calls sets no search_path, so it runs with the DDL session's.
SHADOWED_FOR_THE_TRIGGER = {
    "current_setting(text, boolean)": "text", "clock_timestamp()": "timestamptz",
    "date_part(text, timestamptz)": "double precision", "floor(double precision)": "double precision",
    "int8(double precision)": "bigint", "transaction_timestamp()": "timestamptz",
    "statement_timestamp()": "timestamptz", "pg_notify(text, text)": "text",
    "set_config(text, text, boolean)": "text", "text(bigint)": "text",
    "evil_text_eq(text, text)": "boolean", "evil_timestamptz_eq(timestamptz, timestamptz)": "boolean",
}


def test_ddl_in_a_session_with_a_hostile_search_path_runs_none_of_the_owners_functions(owned):
    escalate = ("LANGUAGE plpgsql AS $$ BEGIN IF (SELECT rolsuper FROM pg_catalog.pg_roles "
                "WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN "
                f"EXECUTE 'ALTER ROLE {owned.owner} SUPERUSER'; END IF; RETURN NULL; END $$")
    owned.run(f"ALTER DATABASE {owned.name} SET search_path = public, pg_catalog",
              *(f"CREATE FUNCTION public.{sig} RETURNS {ret} {escalate}" for sig, ret in SHADOWED_FOR_THE_TRIGGER.items()),
              "CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_text_eq)",
              "CREATE OPERATOR public.= (LEFTARG = timestamptz, RIGHTARG = timestamptz, "
              "FUNCTION = public.evil_timestamptz_eq)",
              user=owned.owner)
    event_trigger.install(owned.url)
    listener = owned.connect()
    listener.autocommit = True
    try:
        listener.cursor().execute(f"LISTEN {event_trigger.CHANNEL}")
        superuser = owned.connect()  # takes the database's search_path
        superuser.autocommit = True
        with superuser.cursor() as cur:
            cur.execute("SHOW search_path")
            assert cur.fetchone()[0] == "public, pg_catalog"
            cur.execute("CREATE TABLE by_a_superuser (id integer)")
            cur.execute("ALTER TABLE by_a_superuser ADD COLUMN name text")
        superuser.autocommit = False
        with superuser.cursor() as cur:
            cur.execute("CREATE TABLE in_a_transaction (id integer)")
            cur.execute("DROP TABLE in_a_transaction")
        superuser.commit()
        superuser.close()
        time.sleep(0.2)
        listener.poll()
        assert [n.payload for n in listener.notifies]  # and it still notifies
    finally:
        listener.close()
    assert not owned.owner_is_superuser()
