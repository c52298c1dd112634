"""A trigger changed after install is a critical event on the next check, and never left armed."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from monitor_app.schema import event_trigger, trigger_integrity, trigger_upkeep
from monitor_app.schema.check import run_check
from monitor_app.store.models import Event
from monitor_app.store.models.schema import SchemaWatchState
from tests.schema.conftest import add_asset, make_runtime, pg_connection

FN = "_dbmon.notify_schema_change()"
SENDER = "_dbmon.send_schema_notification(text)"

TAMPERINGS = {
    "body": ("CREATE OR REPLACE FUNCTION _dbmon.notify_schema_change() RETURNS event_trigger LANGUAGE plpgsql "
             "AS $$ BEGIN NULL; END $$", "body is not dbmon's"),
    "disabled": ("ALTER EVENT TRIGGER dbmon_schema_ddl_start DISABLE", "dbmon_schema_ddl_start is disabled"),
    "replica only": ("ALTER EVENT TRIGGER dbmon_schema_ddl_start ENABLE REPLICA", "enabled only in replica sessions"),
    "trigger dropped": ("DROP EVENT TRIGGER dbmon_schema_ddl_start", "dbmon_schema_ddl_start is missing"),
    "security definer": (f"ALTER FUNCTION {FN} SECURITY DEFINER", "SECURITY DEFINER, not SECURITY INVOKER"),
    "a setting on the trigger's function": (f"ALTER FUNCTION {FN} SET search_path = public, pg_catalog",
                                            "settings ['search_path=public, pg_catalog'], not none"),
    "function granted": ("GRANT EXECUTE ON FUNCTION " + FN + " TO {owner}", "{owner} holds privileges on function"),
    "grant": ("GRANT CREATE ON SCHEMA _dbmon TO {owner}", "{owner} holds privileges on schema _dbmon"),
    "an earlier release's sender added": (
        "CREATE FUNCTION _dbmon.send_schema_notification(tag text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER "
        "SET search_path = pg_catalog, pg_temp AS $$ BEGIN NULL; END $$", "is not the sender of an earlier release"),
    "an earlier release's key table added": ("CREATE TABLE _dbmon.notify_key (key bytea NOT NULL)",
                                             "table _dbmon.notify_key is left from an earlier release"),
    "an earlier release's trigger added": ("CREATE EVENT TRIGGER dbmon_schema_ddl_end ON ddl_command_end "
                                           f"EXECUTE FUNCTION {FN}", "dbmon_schema_ddl_end is left from an earlier release"),
    "uninstalled": ("DROP EVENT TRIGGER dbmon_schema_ddl_start; DROP SCHEMA _dbmon CASCADE", "gone"),
}


@pytest.fixture()
def armed(owned, sqlite_store, tmp_path):
    rt = make_runtime(sqlite_store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(sqlite_store, name="orders-db", engine="postgresql", connection=pg_connection(owned.url))
    run_check(rt, asset_id)
    with sqlite_store.session() as s:
        assert s.get(SchemaWatchState, asset_id).trigger_installed
    return rt, asset_id


def tampered_events(store) -> list[Event]:
    with store.session() as s:
        return list(s.scalars(select(Event).where(Event.type == "schema.trigger_tampered")))


def intact(db) -> bool:
    conn = db.connect()
    try:
        return trigger_integrity.inspect(conn).intact
    finally:
        conn.close()


@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_tampering_is_reported_on_the_next_check_and_repaired(how, owned, sqlite_store, armed):
    rt, asset_id = armed
    statement, problem = (part.format(owner=owned.owner) for part in TAMPERINGS[how])
    owned.run(statement)
    assert run_check(rt, asset_id, {"source": "manual"})
    events = tampered_events(sqlite_store)
    assert len(events) == 1, [e.summary for e in events]
    assert events[0].severity == "critical" and events[0].asset_id == asset_id
    assert any(problem in p for p in events[0].payload["problems"]), events[0].payload
    assert events[0].payload["action"] == "repaired"
    assert intact(owned)
    run_check(rt, asset_id, {"source": "manual"})
    assert len(tampered_events(sqlite_store)) == 1


def test_a_function_handed_to_a_plain_role_is_disarmed(owned, sqlite_store, armed):
    rt, asset_id = armed
    owned.run(f"ALTER SCHEMA _dbmon OWNER TO {owned.owner}", f"ALTER FUNCTION {FN} OWNER TO {owned.owner}")
    run_check(rt, asset_id, {"source": "manual"})
    (event,) = tampered_events(sqlite_store)
    assert f"owned by {owned.owner}" in event.summary and event.payload["action"].startswith("disarmed")
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "refused"
    with sqlite_store.session() as s:  # the same state is not reported again, under either name
        assert s.scalars(select(Event.id).where(Event.type.like("schema.trigger_%"))).all() == [event.id]
        assert not s.get(SchemaWatchState, asset_id).trigger_installed
    # The new owner may rewrite the function now, but no trigger calls it any more.
    owned.run("CREATE OR REPLACE FUNCTION _dbmon.notify_schema_change() RETURNS event_trigger LANGUAGE plpgsql "
              f"AS $$ BEGIN ALTER ROLE {owned.owner} SUPERUSER; END $$", user=owned.owner)
    owned.run("CREATE TABLE superuser_ddl (id integer)")
    assert not owned.owner_is_superuser()
    assert event_trigger.installed(owned.connect()) is False


def test_an_object_added_to_the_schema_is_reported_and_the_trigger_disarmed(owned, sqlite_store, armed):
    """Nothing but dbmon's function belongs in `_dbmon`, which snapshots do not look into: an
    install refuses to vouch for what else is there."""
    rt, asset_id = armed
    owned.run("CREATE TABLE _dbmon.stash (secret text)")
    run_check(rt, asset_id, {"source": "manual"})
    (event,) = tampered_events(sqlite_store)
    assert "table _dbmon.stash is not part of dbmon's install" in event.payload["problems"]
    assert event.payload["action"].startswith("disarmed")
    assert event_trigger.installed(owned.connect()) is False
    owned.run("DROP TABLE _dbmon.stash")  # the schema is left without its trigger: that is repaired
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "repaired"
    assert intact(owned)


def test_an_untouched_trigger_is_verified_without_events(owned, sqlite_store, armed):
    rt, asset_id = armed
    owned.run("CREATE TABLE t (id integer)")
    assert run_check(rt, asset_id, {"source": "manual"})["changed"]
    assert tampered_events(sqlite_store) == [] and intact(owned)


# What releases before signed notifications installed, verbatim.
PREVIOUS_RELEASE_SQL = """
CREATE SCHEMA IF NOT EXISTS _dbmon;
CREATE OR REPLACE FUNCTION _dbmon.notify_schema_change() RETURNS event_trigger
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
    PERFORM pg_notify('dbmon_schema', json_build_object(
      'tag', TG_TAG, 'event', TG_EVENT, 'object', left(identity, 512), 'objects', n,
      'user', session_user, 'application_name', current_setting('application_name', true),
      'at', clock_timestamp())::text);
  EXCEPTION WHEN OTHERS THEN
    NULL;  -- a monitoring hook must never break the DDL it watches
  END;
END
$fn$;
REVOKE ALL ON SCHEMA _dbmon FROM PUBLIC;
REVOKE ALL ON FUNCTION _dbmon.notify_schema_change() FROM PUBLIC;
CREATE EVENT TRIGGER dbmon_schema_ddl_end ON ddl_command_end EXECUTE FUNCTION _dbmon.notify_schema_change();
CREATE EVENT TRIGGER dbmon_schema_sql_drop ON sql_drop EXECUTE FUNCTION _dbmon.notify_schema_change();
"""


def test_the_previous_releases_trigger_is_upgraded_without_an_alarm(owned, sqlite_store, armed):
    rt, asset_id = armed
    event_trigger.uninstall(owned.url)
    owned.run(PREVIOUS_RELEASE_SQL)
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "upgraded"
    assert tampered_events(sqlite_store) == [] and intact(owned)


# The function body of the release that signed every statement, verbatim.
PREVIOUS_SIGNED_BODY = """
DECLARE
  identity pg_catalog.text;
  n pg_catalog.int4 := 0;
  body pg_catalog.text;
  k pg_catalog.bytea;
BEGIN
  BEGIN
    IF TG_EVENT OPERATOR(pg_catalog.=) 'sql_drop' THEN
      SELECT pg_catalog.min(object_identity), pg_catalog.count(*) INTO identity, n
        FROM pg_catalog.pg_event_trigger_dropped_objects();
    ELSE
      SELECT pg_catalog.min(object_identity), pg_catalog.count(*) INTO identity, n
        FROM pg_catalog.pg_event_trigger_ddl_commands();
    END IF;
    body := pg_catalog.json_build_object(
      'tag', TG_TAG, 'event', TG_EVENT, 'object', pg_catalog.left(identity, 512), 'objects', n,
      'user', session_user, 'application_name', pg_catalog.current_setting('application_name', true),
      'at', pg_catalog.clock_timestamp(), 'pid', pg_catalog.pg_backend_pid())::pg_catalog.text;
    SELECT key INTO k FROM _dbmon.notify_key LIMIT 1;
    IF k IS NOT NULL THEN
      body := 'v1.' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.sha256(
        k OPERATOR(pg_catalog.||) pg_catalog.sha256(k OPERATOR(pg_catalog.||) pg_catalog.convert_to(body, 'UTF8'))),
        'hex') OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) body;
    END IF;
    PERFORM pg_catalog.pg_notify('dbmon_schema', body);
  EXCEPTION WHEN OTHERS THEN
    NULL;  -- a monitoring hook must never break the DDL it watches
  END;
END
"""


def install_two_trigger_release(db, body: str) -> None:
    """The shape of the releases between signed notifications and the single trigger: the signing
    function with its own search_path, on ddl_command_end and sql_drop, nothing else."""
    event_trigger.uninstall(db.url)
    db.run("CREATE SCHEMA _dbmon", "CREATE TABLE _dbmon.notify_key (key bytea NOT NULL)",
           "INSERT INTO _dbmon.notify_key VALUES ('\\x00112233'::bytea)",
           "CREATE FUNCTION _dbmon.notify_schema_change() RETURNS event_trigger LANGUAGE plpgsql "
           f"SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn${body}$fn$",
           "REVOKE ALL ON FUNCTION _dbmon.notify_schema_change() FROM PUBLIC",
           "CREATE EVENT TRIGGER dbmon_schema_ddl_end ON ddl_command_end EXECUTE FUNCTION _dbmon.notify_schema_change()",
           "CREATE EVENT TRIGGER dbmon_schema_sql_drop ON sql_drop EXECUTE FUNCTION _dbmon.notify_schema_change()")


def event_triggers(db) -> list[str]:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT evtname FROM pg_event_trigger ORDER BY 1")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def test_the_per_statement_signing_release_is_upgraded_without_an_alarm(owned, sqlite_store, armed):
    rt, asset_id = armed
    install_two_trigger_release(owned, PREVIOUS_SIGNED_BODY)
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "upgraded"
    assert tampered_events(sqlite_store) == [] and intact(owned)
    assert event_triggers(owned) == ["dbmon_schema_ddl_start"]


# The function body of the release that notified every autocommitted statement, verbatim.
PREVIOUS_PER_SESSION_BODY = """
DECLARE
  body pg_catalog.text;
  slot pg_catalog.text;
  payload pg_catalog.text;
  k pg_catalog.bytea;
BEGIN
  IF TG_EVENT OPERATOR(pg_catalog.=) 'sql_drop' THEN
    RETURN;
  END IF;
  body := '{"tag":' OPERATOR(pg_catalog.||) pg_catalog.to_json(TG_TAG)
    OPERATOR(pg_catalog.||) ',"event":"ddl_command_end","user":' OPERATOR(pg_catalog.||) pg_catalog.to_json(session_user::pg_catalog.text)
    OPERATOR(pg_catalog.||) ',"application_name":' OPERATOR(pg_catalog.||) pg_catalog.to_json(pg_catalog.current_setting('application_name'))
    OPERATOR(pg_catalog.||) ',"pid":' OPERATOR(pg_catalog.||) pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.||) '}';
  slot := 'dbmon.notify_' OPERATOR(pg_catalog.||) pg_catalog.translate(TG_TAG, ' ', '_');
  payload := pg_catalog.current_setting(slot, true);
  IF payload OPERATOR(pg_catalog.=) body OR pg_catalog.starts_with(payload, 'v1.')
      AND pg_catalog.substr(payload, 69) OPERATOR(pg_catalog.=) body THEN
    NULL;  -- this session's payload for this tag, already signed
  ELSE
    payload := body;
    BEGIN
      SELECT key INTO k FROM _dbmon.notify_key LIMIT 1;
      IF k IS NOT NULL THEN
        payload := 'v1.' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.sha256(
          k OPERATOR(pg_catalog.||) pg_catalog.sha256(k OPERATOR(pg_catalog.||) pg_catalog.convert_to(body, 'UTF8'))),
          'hex') OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) body;
      END IF;
      PERFORM pg_catalog.set_config(slot, payload, false);
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- a monitoring hook must never break the DDL it watches
    END;
  END IF;
  PERFORM pg_catalog.pg_notify('dbmon_schema', payload);
END
"""


def test_the_notify_every_statement_release_is_upgraded_without_an_alarm(owned, sqlite_store, armed):
    rt, asset_id = armed
    install_two_trigger_release(owned, PREVIOUS_PER_SESSION_BODY)
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "upgraded"
    assert tampered_events(sqlite_store) == [] and intact(owned)
    conn = owned.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)", (FN,))
            assert cur.fetchone()[0] == event_trigger.FUNCTION_BODY
    finally:
        conn.close()


# The function body of the last release with two event triggers (ddl_command_end and sql_drop,
# one notification per transaction or window), verbatim.
PREVIOUS_TWO_TRIGGER_BODY = """
DECLARE
  body pg_catalog.text;
  slot pg_catalog.text;
  payload pg_catalog.text;
  k pg_catalog.bytea;
  this_window pg_catalog.text;
BEGIN
  IF TG_EVENT OPERATOR(pg_catalog.=) 'sql_drop'
      OR pg_catalog.statement_timestamp() OPERATOR(pg_catalog.=) pg_catalog.transaction_timestamp()
      AND pg_catalog.current_setting('dbmon.notified_in', true) OPERATOR(pg_catalog.=) pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog./) 0.25::pg_catalog.float8))::pg_catalog.text THEN
    RETURN;  -- sql_drop: ddl_command_end follows; or covered by the listener's check after this
             -- session's notification in this window
  END IF;
  IF pg_catalog.current_setting('dbmon.notified_xact', true) OPERATOR(pg_catalog.=)
      pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text THEN
    RETURN;  -- this transaction has notified: its commit delivers that notification
  END IF;
  this_window := pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog./) 0.25::pg_catalog.float8))::pg_catalog.text;
  IF pg_catalog.current_setting('dbmon.notified_in', true) OPERATOR(pg_catalog.=) this_window THEN
    NULL;  -- an explicit transaction: it notifies, the window is recorded already
  ELSE
    PERFORM pg_catalog.set_config('dbmon.notified_in', this_window, false);
  END IF;
  PERFORM pg_catalog.set_config('dbmon.notified_xact', pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text, true);
  body := '{"tag":' OPERATOR(pg_catalog.||) pg_catalog.to_json(TG_TAG)
    OPERATOR(pg_catalog.||) ',"event":"ddl_command_end","user":' OPERATOR(pg_catalog.||) pg_catalog.to_json(session_user::pg_catalog.text)
    OPERATOR(pg_catalog.||) ',"application_name":' OPERATOR(pg_catalog.||) pg_catalog.to_json(pg_catalog.current_setting('application_name'))
    OPERATOR(pg_catalog.||) ',"pid":' OPERATOR(pg_catalog.||) pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.||) '}';
  slot := 'dbmon.notify_' OPERATOR(pg_catalog.||) pg_catalog.translate(TG_TAG, ' ', '_');
  payload := pg_catalog.current_setting(slot, true);
  IF payload OPERATOR(pg_catalog.=) body OR pg_catalog.starts_with(payload, 'v1.')
      AND pg_catalog.substr(payload, 69) OPERATOR(pg_catalog.=) body THEN
    NULL;  -- this session's payload for this tag, already signed
  ELSE
    payload := body;
    BEGIN
      SELECT key INTO k FROM _dbmon.notify_key LIMIT 1;
      IF k IS NOT NULL THEN
        payload := 'v1.' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.sha256(
          k OPERATOR(pg_catalog.||) pg_catalog.sha256(k OPERATOR(pg_catalog.||) pg_catalog.convert_to(body, 'UTF8'))),
          'hex') OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) body;
      END IF;
      PERFORM pg_catalog.set_config(slot, payload, false);
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- a monitoring hook must never break the DDL it watches
    END;
  END IF;
  PERFORM pg_catalog.pg_notify('dbmon_schema', payload);
END
"""


def test_the_two_trigger_release_is_upgraded_to_the_single_trigger_without_an_alarm(owned, sqlite_store, armed):
    rt, asset_id = armed
    install_two_trigger_release(owned, PREVIOUS_TWO_TRIGGER_BODY)
    conn = owned.connect()
    try:
        state = trigger_integrity.inspect(conn)
        assert not state.intact and "event trigger dbmon_schema_ddl_end is left from an earlier release" in state.problems
    finally:
        conn.close()
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "upgraded"
    assert tampered_events(sqlite_store) == [] and intact(owned)
    assert event_triggers(owned) == ["dbmon_schema_ddl_start"]
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "verified"


def test_an_earlier_release_with_a_tampered_leftover_trigger_is_reported(owned, sqlite_store, armed):
    rt, asset_id = armed
    install_two_trigger_release(owned, PREVIOUS_TWO_TRIGGER_BODY)
    owned.run("ALTER EVENT TRIGGER dbmon_schema_sql_drop DISABLE")
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "repaired"
    (event,) = tampered_events(sqlite_store)
    assert "event trigger dbmon_schema_sql_drop is disabled" in event.payload["problems"]
    assert intact(owned) and event_triggers(owned) == ["dbmon_schema_ddl_start"]


# The last signed release, verbatim: a deciding function (SECURITY DEFINER, no search_path)
# calling a SECURITY DEFINER sender that signed the payload with the key in _dbmon.notify_key.
PREVIOUS_SIGNED_FUNCTION_BODY = """
BEGIN
  IF pg_catalog.pg_current_xact_id_if_assigned() IS NULL THEN
    IF pg_catalog.current_setting('dbmon.notified_in', true) OPERATOR(pg_catalog.=) pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog./) 0.25::pg_catalog.float8))::pg_catalog.text THEN
      RETURN;  -- this session notified in this window: the listener's trailing check covers the statement
    END IF;
  ELSIF pg_catalog.current_setting('dbmon.notified_xact', true) OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text THEN
    RETURN;  -- this transaction has notified: its commit delivers that notification
  END IF;
  PERFORM _dbmon.send_schema_notification(TG_TAG);
END
"""
PREVIOUS_SIGNED_SENDER_BODY = """
DECLARE
  body pg_catalog.text;
  slot pg_catalog.text;
  payload pg_catalog.text;
  k pg_catalog.bytea;
  this_xact pg_catalog.text;
  started pg_catalog.text;
BEGIN
  this_xact := pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text;
  started := 's' OPERATOR(pg_catalog.||) pg_catalog.transaction_timestamp()::pg_catalog.text;
  IF this_xact IS NOT NULL AND pg_catalog.current_setting('dbmon.notified_xact', true) OPERATOR(pg_catalog.=) started THEN
    -- This transaction notified before it had an id; the sender must not assign one, as some
    -- commands refuse to run in a transaction that has one. Remember the id, send no more.
    PERFORM pg_catalog.set_config('dbmon.notified_xact', this_xact, true);
    RETURN;
  END IF;
  PERFORM pg_catalog.set_config('dbmon.notified_in', pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog./) 0.25::pg_catalog.float8))::pg_catalog.text, false);
  PERFORM pg_catalog.set_config('dbmon.notified_xact', COALESCE(this_xact, started), true);
  body := '{"tag":' OPERATOR(pg_catalog.||) pg_catalog.to_json(tag)
    OPERATOR(pg_catalog.||) ',"event":"ddl_command_start","user":' OPERATOR(pg_catalog.||) pg_catalog.to_json(session_user::pg_catalog.text)
    OPERATOR(pg_catalog.||) ',"application_name":' OPERATOR(pg_catalog.||) pg_catalog.to_json(pg_catalog.current_setting('application_name'))
    OPERATOR(pg_catalog.||) ',"pid":' OPERATOR(pg_catalog.||) pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.||) '}';
  slot := 'dbmon.notify_' OPERATOR(pg_catalog.||) pg_catalog.translate(tag, ' ', '_');
  payload := pg_catalog.current_setting(slot, true);
  IF payload OPERATOR(pg_catalog.=) body OR pg_catalog.starts_with(payload, 'v1.')
      AND pg_catalog.substr(payload, 69) OPERATOR(pg_catalog.=) body THEN
    NULL;  -- this session's payload for this tag, already signed
  ELSE
    payload := body;
    BEGIN
      SELECT key INTO k FROM _dbmon.notify_key LIMIT 1;
      IF k IS NOT NULL THEN
        payload := 'v1.' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.sha256(
          k OPERATOR(pg_catalog.||) pg_catalog.sha256(k OPERATOR(pg_catalog.||) pg_catalog.convert_to(body, 'UTF8'))),
          'hex') OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) body;
      END IF;
      PERFORM pg_catalog.set_config(slot, payload, false);
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- a monitoring hook must never break the DDL it watches
    END;
  END IF;
  PERFORM pg_catalog.pg_notify('dbmon_schema', payload);
END
"""
PREVIOUS_SIGNED_SQL = (
    "CREATE SCHEMA IF NOT EXISTS _dbmon AUTHORIZATION CURRENT_USER",
    "CREATE TABLE IF NOT EXISTS _dbmon.notify_key (key bytea NOT NULL)",
    "INSERT INTO _dbmon.notify_key SELECT '\\x00112233445566778899'::bytea WHERE NOT EXISTS (SELECT 1 FROM _dbmon.notify_key)",
    "CREATE OR REPLACE FUNCTION _dbmon.send_schema_notification(tag pg_catalog.text) RETURNS pg_catalog.void LANGUAGE plpgsql "
    f"SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn${PREVIOUS_SIGNED_SENDER_BODY}$fn$",
    "CREATE OR REPLACE FUNCTION _dbmon.notify_schema_change() RETURNS event_trigger LANGUAGE plpgsql "
    f"SECURITY DEFINER AS $fn${PREVIOUS_SIGNED_FUNCTION_BODY}$fn$",
    "REVOKE ALL ON SCHEMA _dbmon FROM PUBLIC",
    "REVOKE ALL ON FUNCTION _dbmon.send_schema_notification(pg_catalog.text) FROM PUBLIC",
    "REVOKE ALL ON FUNCTION _dbmon.notify_schema_change() FROM PUBLIC",
    "CREATE EVENT TRIGGER dbmon_schema_ddl_start ON ddl_command_start EXECUTE FUNCTION _dbmon.notify_schema_change()",
)


def install_signed_release(db) -> None:
    event_trigger.uninstall(db.url)
    db.run(*PREVIOUS_SIGNED_SQL)


def dbmon_objects(db) -> list[str]:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                        "WHERE n.nspname = '_dbmon' UNION ALL SELECT c.oid::regclass::text FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '_dbmon' ORDER BY 1")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def test_the_constants_are_the_signed_release_that_upgrades_recognise():
    assert hashlib.sha256(PREVIOUS_SIGNED_FUNCTION_BODY.encode()).hexdigest() in trigger_upkeep.PREVIOUS_BODY_SHA256
    assert hashlib.sha256(PREVIOUS_SIGNED_SENDER_BODY.encode()).hexdigest() == \
        trigger_integrity.EARLIER_SENDER_BODY_SHA256


def test_the_signed_release_is_upgraded_leaving_no_sender_or_key(owned, sqlite_store, armed):
    rt, asset_id = armed
    install_signed_release(owned)
    owned.run("CREATE TABLE made_under_the_signed_release (id integer)")  # it works as it did
    conn = owned.connect()
    try:
        problems = trigger_integrity.inspect(conn).problems
    finally:
        conn.close()
    assert "function _dbmon.send_schema_notification(pg_catalog.text) is left from an earlier release" in problems
    assert "table _dbmon.notify_key is left from an earlier release" in problems
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "upgraded"
    assert tampered_events(sqlite_store) == [] and intact(owned)
    assert dbmon_objects(owned) == ["_dbmon.notify_schema_change()"]
    assert event_triggers(owned) == ["dbmon_schema_ddl_start"]
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "verified"


def test_the_signed_release_with_a_tampered_sender_is_reported_and_repaired(owned, sqlite_store, armed):
    rt, asset_id = armed
    install_signed_release(owned)
    owned.run(PREVIOUS_SIGNED_SQL[3].replace("PERFORM pg_catalog.pg_notify", "PERFORM pg_catalog.pg_sleep(0); PERFORM pg_catalog.pg_notify"))
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "repaired"
    (event,) = tampered_events(sqlite_store)
    assert any("is not the sender of an earlier release" in p for p in event.payload["problems"])
    assert intact(owned) and dbmon_objects(owned) == ["_dbmon.notify_schema_change()"]


def test_an_install_over_the_signed_release_leaves_nothing_of_it_and_uninstall_removes_everything(owned):
    install_signed_release(owned)
    event_trigger.install(owned.url)
    assert dbmon_objects(owned) == ["_dbmon.notify_schema_change()"] and intact(owned)
    assert event_trigger.uninstall(owned.url) is True
    assert owned.value("SELECT count(*) FROM pg_namespace WHERE nspname = '_dbmon'") == 0
    assert event_triggers(owned) == []

# The function body of the last release with a per-session quarter-second window for
# autocommitted statements (same trigger and function shape as now), verbatim.
PREVIOUS_WINDOW_BODY = """
DECLARE
  this_window pg_catalog.text;
  sent pg_catalog.text;
BEGIN
  IF pg_catalog.transaction_timestamp() OPERATOR(pg_catalog.=) pg_catalog.statement_timestamp() THEN
    this_window := pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog./) 0.25::pg_catalog.float8))::pg_catalog.text;
    IF pg_catalog.current_setting('dbmon.notified_in', true) OPERATOR(pg_catalog.=) this_window THEN
      RETURN;  -- this session notified in this window: the listener's trailing check covers the statement
    END IF;
    sent := pg_catalog.set_config('dbmon.notified_in', this_window, false);
  END IF;
  sent := pg_catalog.pg_notify('dbmon_schema', TG_TAG)::pg_catalog.text;
END
"""


def test_the_window_release_is_upgraded_without_an_alarm(owned, sqlite_store, armed):
    rt, asset_id = armed
    assert hashlib.sha256(PREVIOUS_WINDOW_BODY.encode()).hexdigest() in trigger_upkeep.PREVIOUS_BODY_SHA256
    event_trigger.install(owned.url)
    owned.run(f"CREATE OR REPLACE FUNCTION {event_trigger.FUNCTION}() RETURNS event_trigger LANGUAGE plpgsql "
              f"VOLATILE AS $fn${PREVIOUS_WINDOW_BODY}$fn$")
    assert not intact(owned)
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "upgraded"
    assert tampered_events(sqlite_store) == [] and intact(owned)
    assert owned.value(f"SELECT provolatile FROM pg_proc WHERE oid = '{event_trigger.FUNCTION}()'::regprocedure") == "s"
    assert run_check(rt, asset_id, {"source": "manual"})["trigger"] == "verified"
