"""A DDL statement travels trigger -> watcher -> ledger/broker -> worker -> store, in both modes."""

from __future__ import annotations

import psycopg2
from sqlalchemy import select

from monitor_app.store.models import Asset, Event
from monitor_app.store.models.schema import SchemaChange, SchemaChangeSet, SchemaWatchState
from tests.harness import wait_for


def listening(url: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            # Connected is not listening: LISTEN is the listener's first statement of its own (only
            # the budget's read of the server's limits may come before it), so any other statement
            # seen on its backend means LISTEN has run.
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbmon-listener' "
                        "AND datname = current_database() AND query <> '' "
                        "AND query NOT ILIKE '%max_connections%'")
            return cur.fetchone()[0] > 0
    finally:
        conn.close()


def test_a_ddl_is_stored_through_the_real_processes(deployment, pg_database):
    name, url = pg_database
    deployment.write_config(
        f"assets:\n  - name: appdb\n    engine: postgresql\n    host: 127.0.0.1\n    database: {name}\n"
        "    user: postgres\n    sslmode: disable\n    insecure: true\nschema:\n  event_triggers: true\n")
    deployment.start_worker()
    assert deployment.scan("assets.sync_config").status == "done"
    with deployment.runtime.store.session() as s:
        asset_id = s.scalar(select(Asset.id).where(Asset.name == "appdb"))
    baseline = deployment.scan("schema.check", {"asset_id": asset_id})
    assert baseline.status == "done" and baseline.result["baseline"], baseline.error

    def checked_at():
        with deployment.runtime.store.session() as s:
            return s.get(SchemaWatchState, asset_id).checked_at

    baseline_at = checked_at()
    deployment.start("watcher", "watcher", "--source", "pg_notify")
    wait_for(lambda: listening(url), 30, what="listener connected")
    # Starting to listen asks for a catch-up check (DDL made while nobody listened); a DDL made
    # before it ran would be stored by it, without the trigger's attribution checked below.
    wait_for(lambda: checked_at() != baseline_at, 30, what="the listener's catch-up check")
    # Who ran the DDL is what the server says of the session that notified, looked up while it
    # is still connected.
    conn = psycopg2.connect(url, application_name="release-7")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE invoices (id integer PRIMARY KEY, total numeric(10,2))")
        cur.execute("ALTER TABLE invoices ADD COLUMN paid boolean NOT NULL DEFAULT false")

    def stored():
        with deployment.runtime.store.session() as s:
            return s.scalars(select(SchemaChangeSet).where(SchemaChangeSet.asset_id == asset_id)).all()

    try:
        sets = wait_for(stored, 30, what="change set stored")
    finally:
        conn.close()
    context = sets[0].context
    assert context["source"] == "trigger" and context["application_names"] == ["release-7"]
    assert "CREATE TABLE" in context["command_tags"]
    with deployment.runtime.store.session() as s:
        objects = {c.object for c in s.scalars(select(SchemaChange).where(SchemaChange.asset_id == asset_id))}
        event = s.scalar(select(Event).where(Event.type == "schema.changed", Event.asset_id == asset_id))
    assert objects == {"public.invoices"}
    assert event.severity == "info" and "public.invoices" in event.summary
