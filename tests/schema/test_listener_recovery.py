"""A schema listener that stops working says so, starts over and says when it is back."""

from __future__ import annotations

import time

from sqlalchemy import select

from monitor_app.schema import event_trigger, notifications
from monitor_app.store.models import Event
from tests.schema.conftest import add_asset, make_runtime, pg_connection
from tests.schema.test_watch_sources import Emitted
from workers.watch_sources.pg_notify import PgNotifySource


def events(store, type_: str) -> list[Event]:
    with store.session() as s:
        return list(s.scalars(select(Event).where(Event.type == type_).order_by(Event.id)))


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_lost_connection_is_reported_and_so_is_the_recovery(pg, sqlite_store, tmp_path):
    rt = make_runtime(sqlite_store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(sqlite_store, name="orders-db", engine="postgresql", connection=pg_connection(pg.url))
    event_trigger.install(pg.url)
    emitted = Emitted()
    source = PgNotifySource(rt, emitted)
    source.start()
    try:
        listener = source.listeners[asset_id][1]
        assert listener.listening.wait(5)
        pg.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dbmon-listener'")
        assert wait_until(lambda: events(sqlite_store, "schema.listener_recovered"))
        (failed,) = events(sqlite_store, "schema.listener_failed")
        assert failed.severity == "warning" and failed.asset_id == asset_id
        assert "connection lost" in failed.payload["reason"]
        assert events(sqlite_store, "schema.listener_recovered")[0].payload["seconds_down"] > 0
        emitted.calls.clear()
        pg.run("CREATE TABLE after_the_outage (id integer)")
        assert wait_until(lambda: any("public.after_the_outage" in kw["context"]["objects"]
                                      for _, kw in emitted.calls))
    finally:
        source.stop()


def test_an_unexpected_error_restarts_listening_instead_of_ending_it(pg, sqlite_store, tmp_path, monkeypatch):
    rt = make_runtime(sqlite_store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(sqlite_store, name="orders-db", engine="postgresql", connection=pg_connection(pg.url))
    event_trigger.install(pg.url)
    real_read, calls = notifications.read, []

    def read_with_a_bug_once(payload, pid, key):
        calls.append(payload)
        if len(calls) == 1:
            raise RuntimeError("a bug in reading notifications")
        return real_read(payload, pid, key)

    monkeypatch.setattr(notifications, "read", read_with_a_bug_once)
    emitted = Emitted()
    source = PgNotifySource(rt, emitted)
    source.start()
    try:
        listener = source.listeners[asset_id][1]
        assert listener.listening.wait(5)
        pg.run("CREATE TABLE trips_the_bug (id integer)")
        assert wait_until(lambda: events(sqlite_store, "schema.listener_recovered"))
        assert "RuntimeError: a bug in reading notifications" in \
            events(sqlite_store, "schema.listener_failed")[0].payload["reason"]
        pg.run("CREATE TABLE seen_after_restart (id integer)")
        assert wait_until(lambda: any("public.seen_after_restart" in kw["context"]["objects"]
                                      for _, kw in emitted.calls))
        assert listener.is_alive()
    finally:
        source.stop()
