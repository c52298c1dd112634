"""A schema listener that stops working says so, starts over and says when it is back."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import select

from monitor_app.schema import event_trigger, notifications
from monitor_app.store.models import Event
from tests.harness import wait_for
from tests.schema.conftest import add_asset, make_runtime, pg_connection
from tests.schema.test_watch_sources import Emitted
from workers.watch_sources.pg_notify import PgNotifySource


def events(store, type_: str) -> list[Event]:
    with store.session() as s:
        return list(s.scalars(select(Event).where(Event.type == type_).order_by(Event.id)))


@contextmanager
def listening(pg, store, tmp_path):
    """A pg_notify source listening on `pg` with the trigger installed: (asset id, emitted, listener)."""
    rt = make_runtime(store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(store, name="orders-db", engine="postgresql", connection=pg_connection(pg.url))
    event_trigger.install(pg.url)
    emitted = Emitted()
    source = PgNotifySource(rt, emitted)
    source.start()
    try:
        listener = source.listeners[asset_id][1]
        assert listener.listening.wait(5)
        yield asset_id, emitted, listener
    finally:
        source.stop()


def seen(emitted, application_name: str) -> bool:
    return any(application_name in kw["context"]["application_names"] for _, kw in emitted.calls)


def test_a_lost_connection_is_reported_and_so_is_the_recovery(pg, sqlite_store, tmp_path):
    with listening(pg, sqlite_store, tmp_path) as (asset_id, emitted, _):
        pg.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE application_name = 'dbmon-listener' AND datname = current_database()")
        wait_for(lambda: events(sqlite_store, "schema.listener_recovered"), 10, what="listener_recovered")
        (failed,) = events(sqlite_store, "schema.listener_failed")
        assert failed.severity == "warning" and failed.asset_id == asset_id
        assert "connection lost" in failed.payload["reason"]
        assert events(sqlite_store, "schema.listener_recovered")[0].payload["seconds_down"] > 0
        emitted.calls.clear()
        pg.run("SET application_name = 'after_the_outage'", "CREATE TABLE after_the_outage (id integer)")
        wait_for(lambda: seen(emitted, "after_the_outage"), 10, what="the DDL after the outage")


def test_an_unexpected_error_restarts_listening_instead_of_ending_it(pg, sqlite_store, tmp_path, monkeypatch):
    real_read, calls = notifications.read, []

    def read_with_a_bug_once(payload):
        calls.append(payload)
        if len(calls) == 1:
            raise RuntimeError("a bug in reading notifications")
        return real_read(payload)

    monkeypatch.setattr(notifications, "read", read_with_a_bug_once)
    with listening(pg, sqlite_store, tmp_path) as (_, emitted, listener):
        pg.run("CREATE TABLE trips_the_bug (id integer)")
        wait_for(lambda: events(sqlite_store, "schema.listener_recovered"), 10, what="listener_recovered")
        assert "RuntimeError: a bug in reading notifications" in \
            events(sqlite_store, "schema.listener_failed")[0].payload["reason"]
        pg.run("SET application_name = 'seen_after_restart'", "CREATE TABLE seen_after_restart (id integer)")
        wait_for(lambda: seen(emitted, "seen_after_restart"), 10, what="the DDL after the restart")
        assert listener.is_alive()
