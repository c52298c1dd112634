"""A schema check of a real asset stores versions, change sets and events only on a net change."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor_app.schema.check import due_assets, run_check
from monitor_app.schema.history import diff_versions
from monitor_app.store.models import Event
from monitor_app.store.models.schema import SchemaChange, SchemaChangeSet, SchemaSnapshot, SchemaWatchState
from tests.schema.conftest import PgScratch, add_asset, make_runtime, pg_connection
from tests.services import role_name


@pytest.fixture()
def pg_asset(store, tmp_path, pg_database):
    def build(config: dict | None = None, user: str = "postgres"):
        rt = make_runtime(store, tmp_path, config)
        asset_id = add_asset(store, name="orders-db", engine="postgresql",
                             connection=pg_connection(pg_database[1], user))
        return rt, asset_id

    scratch = PgScratch(pg_database[1])
    yield build, scratch
    scratch.close()


def events(store, type_: str) -> list[Event]:
    with store.session() as s:
        return list(s.scalars(select(Event).where(Event.type == type_).order_by(Event.id)))


def test_it_stores_a_baseline_then_only_net_changes(pg_asset, store):
    build, db = pg_asset
    rt, asset_id = build()
    db.run("CREATE TABLE users (id integer PRIMARY KEY, email text)")
    first = run_check(rt, asset_id)
    assert first["baseline"] and first["version"] == 1
    assert run_check(rt, asset_id)["skipped"] == "pre-check marker unchanged"

    db.run("ALTER TABLE users ADD COLUMN nick text", "DROP TABLE users CASCADE",
           "CREATE TABLE users (id integer PRIMARY KEY, email text)")
    outcome = run_check(rt, asset_id)
    assert outcome["changed"] and outcome["version"] == 2 and outcome["max_risk"] == "critical"

    db.run("ANALYZE", "VACUUM", "REINDEX TABLE users")
    assert run_check(rt, asset_id)["changed"] is False
    with store.session() as s:
        assert s.scalar(select(SchemaSnapshot.version).order_by(SchemaSnapshot.version.desc()).limit(1)) == 2
        change_set = s.scalar(select(SchemaChangeSet))
        assert (change_set.from_version, change_set.to_version, change_set.max_risk) == (1, 2, "critical")
        assert change_set.context == {"source": "scheduled"}
        rows = s.scalars(select(SchemaChange).order_by(SchemaChange.id)).all()
        assert {(c.action, c.object) for c in rows} == {("removed", "public.users"), ("added", "public.users")}
        # Dropping and recreating a table loses its data: not a no-op even if it looks the same.
        assert {(c["action"], c["object"], c["risk"]) for c in diff_versions(s, asset_id, 1, 2)} == {
            ("removed", "public.users", "critical"), ("added", "public.users", "low")}
    changed = events(store, "schema.changed")
    assert len(changed) == 1 and changed[0].severity == "page" and changed[0].asset_id == asset_id
    assert changed[0].payload["to_version"] == 2 and "public.users" in changed[0].summary


def test_it_keeps_what_the_notification_said(pg_asset, store):
    build, db = pg_asset
    rt, asset_id = build()
    run_check(rt, asset_id)
    db.run("CREATE TABLE t (id integer)")
    context = {"source": "trigger", "notifications": 1, "command_tags": ["CREATE TABLE"], "users": ["postgres"],
               "application_names": ["migrate"], "objects": ["public.t"]}
    outcome = run_check(rt, asset_id, context)
    assert outcome["source"] == "trigger" and outcome["max_risk"] == "low"
    with store.session() as s:
        assert s.scalar(select(SchemaChangeSet)).context == context
    assert events(store, "schema.changed")[0].severity == "info"


def test_it_reports_each_compatibility_mismatch_once(pg_asset, store, tmp_path):
    build, db = pg_asset
    expected = tmp_path / "expected.sql"
    expected.write_text("CREATE TABLE users (id bigint PRIMARY KEY, email varchar(200), created_at timestamptz);"
                        "CREATE INDEX users_email ON users (email);"
                        "CREATE TABLE audit (id integer);")
    rt, asset_id = build({"schema": {"assets": {"orders-db": {"expected": str(expected)}}}})
    db.run("CREATE TABLE users (id integer PRIMARY KEY, email varchar(100), created_at text)")
    outcome = run_check(rt, asset_id)
    found = {(e.payload["kind"], e.payload["object"], e.severity) for e in events(store, "schema.mismatch")}
    assert found == {
        ("missing_table", "public.audit", "critical"),
        ("narrower_type", "public.users.id", "warning"),
        ("narrower_type", "public.users.email", "warning"),
        ("incompatible_type", "public.users.created_at", "critical"),
        ("missing_index", "public.users(email)", "warning"),
    }
    assert outcome["new_mismatches"] == 5
    db.run("CREATE TABLE audit (id integer)")
    assert run_check(rt, asset_id)["new_mismatches"] == 0
    db.run("ALTER TABLE users DROP COLUMN email")
    assert run_check(rt, asset_id)["new_mismatches"] == 1
    assert events(store, "schema.mismatch")[-1].payload["kind"] == "missing_column"


def test_it_installs_the_event_trigger_when_allowed(pg_asset, store):
    build, db = pg_asset
    rt, asset_id = build({"schema": {"event_triggers": True}})
    first = run_check(rt, asset_id)
    assert first["baseline"]
    with store.session() as s:
        assert s.get(SchemaWatchState, asset_id).trigger_installed is True
    with db.conn.cursor() as cur:
        cur.execute("SELECT evtname FROM pg_event_trigger ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["dbmon_schema_ddl_start"]
    # Installing the trigger is not itself a schema change.
    assert run_check(rt, asset_id, {"source": "trigger"})["changed"] is False


def test_it_checks_without_superuser_on_the_scheduled_path(pg_asset, store):
    build, db = pg_asset
    role = role_name("dbmon_test_reader")
    db.run(f"CREATE ROLE {role} LOGIN")
    try:
        rt, asset_id = build({"schema": {"event_triggers": True}}, user=role)
        assert run_check(rt, asset_id)["baseline"]
        with store.session() as s:
            assert s.get(SchemaWatchState, asset_id).trigger_installed is False
        # DDL that no event trigger would see: the pre-check marker still moves.
        db.run("SET session_replication_role = replica", "CREATE TABLE hidden (id integer)",
               "RESET session_replication_role")
        outcome = run_check(rt, asset_id)
        assert outcome["changed"] and outcome["max_risk"] == "low"
        with store.session() as s:
            assert s.scalar(select(SchemaChange.object)) == "public.hidden"
    finally:
        db.run(f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_it_checks_sqlite_assets(store, tmp_path):
    import sqlite3

    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    assert run_check(rt, asset_id)["baseline"]
    conn.execute("INSERT INTO t (name) VALUES ('x')")
    conn.commit()
    assert run_check(rt, asset_id)["skipped"]
    conn.execute("ALTER TABLE t ADD COLUMN age INTEGER")
    conn.commit()
    conn.close()
    outcome = run_check(rt, asset_id, {"source": "file"})
    assert outcome["changed"] and outcome["version"] == 2
    with store.session() as s:
        assert s.scalar(select(SchemaChange.object)) == "main.t.age"


def test_it_schedules_only_assets_whose_interval_passed(store, tmp_path, pg_database):
    rt = make_runtime(store, tmp_path, {"schema": {"check_interval": 3600}})
    asset_id = add_asset(store, name="orders-db", engine="postgresql", connection=pg_connection(pg_database[1]))
    assert due_assets(rt) == [asset_id]
    run_check(rt, asset_id)
    assert due_assets(rt) == []


def test_it_records_why_a_check_failed(store, tmp_path):
    from monitor_app.errors import DbmonError

    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="gone-db", engine="postgresql",
                         connection={"host": "127.0.0.1", "port": 1, "database": "x", "user": "postgres"})
    with pytest.raises(DbmonError) as info:
        run_check(rt, asset_id)
    assert info.value.permanent is False
    with store.session() as s:
        assert "cannot connect" in s.get(SchemaWatchState, asset_id).last_error


def test_it_is_a_registered_task_on_the_schema_queue():
    import workers.tasks.schema as tasks
    from monitor_app.platform.task_queues import queue_for
    from workers.celery_app import app

    assert app.tasks["schema.check"].name == tasks.check.name == "schema.check"
    assert tasks.check_due.name in app.tasks
    assert queue_for("schema.check") == queue_for("schema.check_due") == "schema"


def test_the_beat_fan_out_dispatches_one_check_per_due_asset(store, tmp_path, pg_database):
    import workers.tasks.schema as tasks
    from monitor_app.store.models import TaskRun

    rt = make_runtime(store, tmp_path)
    ids = [add_asset(store, name=f"db-{i}", engine="postgresql", connection=pg_connection(pg_database[1]))
           for i in range(2)]
    assert tasks.check_due.domain_fn(rt) == {"dispatched": 2, "asset_ids": ids, "already_pending": 0}
    assert tasks.check.domain_fn(rt, asset_id=ids[0])["baseline"] is True
    with store.session() as s:
        runs = s.scalars(select(TaskRun).where(TaskRun.name == "schema.check")).all()
        assert sorted(r.kwargs["asset_id"] for r in runs) == ids and {r.queue for r in runs} == {"schema"}


def test_the_migration_goes_down_and_up_again(tmp_path):
    from alembic import command

    from monitor_app.store.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "schema@base")
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    assert not {"schema_snapshots", "schema_changes"} & set(sa.inspect(engine).get_table_names())
    upgrade(url)
    assert {"schema_snapshots", "schema_change_sets", "schema_changes", "schema_watch_state"} <= set(
        sa.inspect(engine).get_table_names())
    engine.dispose()


def test_a_listeners_catch_up_check_uses_the_pre_check_and_finds_what_changed_while_nobody_listened(
        pg_asset, store):
    build, db = pg_asset
    rt, asset_id = build()
    assert run_check(rt, asset_id, {"source": "scheduled"})["baseline"]
    catch_up = {"source": "trigger", "notifications": 0, "reconnected": True}
    assert run_check(rt, asset_id, catch_up)["skipped"] == "pre-check marker unchanged"
    db.run("CREATE TABLE during_the_restart (id integer)")  # no listener heard it
    outcome = run_check(rt, asset_id, catch_up)
    assert outcome["changed"] and outcome["source"] == "trigger"
    with store.session() as s:
        assert [c.object for c in s.scalars(select(SchemaChange))] == ["public.during_the_restart"]
    # Notifications heard while catching up are a change on their own: no pre-check.
    heard = dict(catch_up, notifications=1)
    assert "skipped" not in run_check(rt, asset_id, heard)


def test_a_trailing_check_after_a_burst_uses_the_pre_check(pg_asset, store):
    build, db = pg_asset
    rt, asset_id = build()
    db.run("CREATE TABLE burst_first (id integer)")
    trailing = {"source": "trigger", "notifications": 0, "trailing": True}
    assert run_check(rt, asset_id, {"source": "trigger", "notifications": 1})["baseline"]
    assert run_check(rt, asset_id, trailing)["skipped"] == "pre-check marker unchanged"
    db.run("CREATE TABLE burst_last (id integer)")  # committed without a notification of its own
    outcome = run_check(rt, asset_id, trailing)
    assert outcome["changed"] and outcome["source"] == "trigger"
    with store.session() as s:
        change_set = s.scalar(select(SchemaChangeSet))
        assert change_set.context["trailing"] is True
        assert [c.object for c in s.scalars(select(SchemaChange))] == ["public.burst_last"]
