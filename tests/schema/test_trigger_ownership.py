"""Installing the event trigger never hands superuser to whoever owns the database."""

from __future__ import annotations

import psycopg2
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from monitor_app.cli.main import cli
from monitor_app.schema import event_trigger, trigger_integrity
from monitor_app.schema.check import run_check
from monitor_app.store.models import Event
from tests.schema.conftest import OwnedDatabase, add_asset, make_runtime, pg_connection


def plant(db: OwnedDatabase) -> None:
    """The owner's trap: a function that, run by a superuser's DDL, makes the owner superuser."""
    db.run("CREATE TABLE IF NOT EXISTS public.ran_as (who text)",
           "CREATE SCHEMA IF NOT EXISTS _dbmon",
           "CREATE OR REPLACE FUNCTION _dbmon.notify_schema_change() RETURNS event_trigger "
           "LANGUAGE plpgsql AS $$ BEGIN IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN "
           "INSERT INTO public.ran_as VALUES (current_user); "
           f"ALTER ROLE {db.owner} SUPERUSER; END IF; END $$", user=db.owner)


def test_a_database_owner_cannot_escalate_through_a_precreated_function(owned):
    plant(owned)
    refusal = None
    try:
        event_trigger.install(owned.url)
    except event_trigger.TriggerError as exc:
        refusal = exc.message
    # The owner still owns the function and may rewrite it at will; then a superuser runs DDL.
    plant(owned)
    owned.run("CREATE TABLE superuser_ddl (id integer)")
    assert not owned.owner_is_superuser(), "the database owner became superuser"
    assert owned.value("SELECT count(*) FROM public.ran_as") == 0
    assert owned.value("SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'dbmon_schema_%'") == 0
    assert refusal and "_dbmon" in refusal and f"is owned by {owned.owner}, not by postgres" in refusal


def test_a_precreated_schema_alone_is_refused_too(owned):
    owned.run("CREATE SCHEMA _dbmon", user=owned.owner)
    with pytest.raises(event_trigger.TriggerError, match=f"schema _dbmon is owned by {owned.owner}"):
        event_trigger.install(owned.url)


def test_the_cli_refuses_with_the_reason_and_no_traceback(owned, audited_store):
    plant(owned)
    result = CliRunner().invoke(cli, ["schema", "install-trigger", "--dsn", owned.url])
    assert result.exit_code == 2, result.output
    assert owned.owner in result.output and "Traceback" not in result.output
    assert owned.value("SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'dbmon_schema_%'") == 0


def test_the_automatic_install_refuses_reports_and_still_checks(owned, sqlite_store, tmp_path):
    rt = make_runtime(sqlite_store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(sqlite_store, name="hosted-db", engine="postgresql", connection=pg_connection(owned.url))
    plant(owned)
    assert run_check(rt, asset_id)["baseline"]
    run_check(rt, asset_id, {"source": "manual"})  # the same refusal is reported once
    with sqlite_store.session() as s:
        refused = list(s.scalars(select(Event).where(Event.type == "schema.trigger_refused")))
    assert len(refused) == 1 and refused[0].severity == "critical"
    assert owned.owner in refused[0].summary and refused[0].payload["problems"]
    plant(owned)
    owned.run("CREATE TABLE superuser_ddl (id integer)")
    assert not owned.owner_is_superuser()


def test_a_clean_install_is_owned_by_the_installing_superuser_and_verified(owned):
    event_trigger.install(owned.url)
    conn = owned.connect()
    try:
        state = trigger_integrity.inspect(conn)
    finally:
        conn.close()
    assert state.problems == [] and state.intact and state.owner == "postgres"
    assert owned.value("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = '_dbmon'") == "postgres"
    # The owner of the database cannot touch what dbmon installed.
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        plant(owned)
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        owned.run("CREATE FUNCTION _dbmon.other() RETURNS int LANGUAGE sql AS 'SELECT 1'", user=owned.owner)
    owned.run("CREATE TABLE superuser_ddl (id integer)")
    assert not owned.owner_is_superuser()


def test_the_trigger_function_names_every_function_operator_and_type_by_schema():
    """The trigger's function runs with the caller's rights and search_path (it sets none, see
    `event_trigger`), so nothing in its body may depend on it, and it reads no relation."""
    import re

    text = event_trigger.FUNCTION_BODY
    calls = re.findall(r"([\w.]+)\s*\(", text)
    assert calls and all(c.startswith("pg_catalog.") or c == "OPERATOR" for c in calls), calls
    assert set(re.findall(r"OPERATOR\(([^)]+)\)", text)) <= {"pg_catalog.=", "pg_catalog./"}
    assert not re.search(r"[^)]\s(=|\|\||/)\s", text.replace(":=", "")), "an unqualified operator"
    assert all(t.startswith("pg_catalog.") for t in re.findall(r"::([\w.]+)", text))
    assert not re.search(r"\b(FROM|PERFORM|EXECUTE|EXCEPTION)\b", text)
    assert "SECURITY DEFINER" not in event_trigger.FUNCTION_SQL and "SET " not in event_trigger.FUNCTION_SQL
