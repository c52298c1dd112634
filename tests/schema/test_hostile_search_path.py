"""A database owner who puts `public` before `pg_catalog` for every session and shadows catalogue
functions and operators there gets none of them run by dbmon's superuser session."""

from __future__ import annotations

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


def test_the_listener_reads_no_key_it_cannot_trust(owned):
    """A squatted `_dbmon.notify_key` view would run its owner's code as dbmon's superuser."""
    from monitor_app.schema.listener import SchemaListener

    owned.run("CREATE SCHEMA _dbmon",
              "CREATE FUNCTION public.evil_key() RETURNS bytea LANGUAGE plpgsql AS $$ BEGIN "
              "IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN "
              f"EXECUTE 'ALTER ROLE {owned.owner} SUPERUSER'; END IF; RETURN 'x'::bytea; END $$",
              "CREATE VIEW _dbmon.notify_key AS SELECT public.evil_key() AS key", user=owned.owner)
    listener = SchemaListener(owned.url, lambda batch: None)
    listener.start()
    try:
        assert listener.listening.wait(5)
    finally:
        listener.stop()
    assert not owned.owner_is_superuser()
