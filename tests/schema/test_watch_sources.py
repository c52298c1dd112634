"""The watcher's schema sources turn a DDL notification or a SQLite schema write into one check."""

from __future__ import annotations

import sqlite3
import threading
import time

from monitor_app.schema import event_trigger
from monitor_app.schema.listener import TRAILING_CHECK_SECONDS
from tests.schema.conftest import PgScratch, add_asset, caught_up, make_runtime, pg_connection
from workers.watch_sources.pg_notify import PgNotifySource
from workers.watch_sources.sqlite_schema import SqliteSchemaSource


class Emitted:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.event = threading.Event()

    def __call__(self, task: str, kwargs: dict) -> str:
        self.calls.append((task, kwargs))
        self.event.set()
        return "run-id"

    def wait(self, timeout: float = 5.0) -> bool:
        ok = self.event.wait(timeout)
        self.event.clear()
        return ok


def test_it_listens_on_postgresql_assets_allowed_a_trigger(store, tmp_path, pg_database):
    rt = make_runtime(store, tmp_path, {"schema": {"event_triggers": True, "quiet_seconds": 0.05}})
    assert PgNotifySource.wanted(rt)
    asset_id = add_asset(store, name="orders-db", engine="postgresql", connection=pg_connection(pg_database[1]))
    event_trigger.install(pg_database[1])
    emitted = Emitted()
    source = PgNotifySource(rt, emitted)
    source.start()
    db = PgScratch(pg_database[1])
    try:
        assert source.listeners[asset_id][1].listening.wait(5)
        caught_up(emitted.calls)
        db.run("SET application_name = 'deploy'", "CREATE TABLE t (id integer)", "ALTER TABLE t ADD COLUMN x text")
        deadline = time.monotonic() + TRAILING_CHECK_SECONDS + 5
        while not any(kw["context"].get("trailing") for _, kw in emitted.calls) and time.monotonic() < deadline:
            emitted.wait(0.1)
        time.sleep(0.2)
    finally:
        source.stop()
        db.close()
    assert {(task, kwargs["asset_id"]) for task, kwargs in emitted.calls} == {("schema.check", asset_id)}
    contexts = [kwargs["context"] for _, kwargs in emitted.calls]
    first, trailing = contexts[0], contexts[-1]
    # Each statement notified; the two may share a batch or not, and the trailing check follows.
    assert first["source"] == "trigger" and first["command_tags"][0] == "CREATE TABLE"
    assert first["application_names"] == ["deploy"] and first["users"] == ["postgres"]
    assert first["attribution"]["by"] == "server" and first["attribution"]["ended_sessions"] == 0
    assert sum(c["notifications"] for c in contexts) == 2 and len(contexts) <= 3
    assert trailing["source"] == "trigger" and trailing["trailing"] and trailing["notifications"] == 0


def test_it_does_not_listen_for_a_discovered_container_without_credentials(store, tmp_path, pg_database):
    # Seen in bench/routine_day.py: such an asset got a listener on libpq's defaults (the host's
    # local socket) and reported `schema.listener_failed` when that unrelated server went away.
    rt = make_runtime(store, tmp_path, {"schema": {"event_triggers": True}})
    with_credentials = add_asset(store, name="orders-db", engine="postgresql",
                                 connection=pg_connection(pg_database[1]))
    add_asset(store, name="pg-container", engine="postgresql", connection={})
    assert list(PgNotifySource(rt, Emitted()).wanted_assets()) == [with_credentials]


def test_it_sits_out_when_triggers_are_not_allowed(store, tmp_path):
    assert not PgNotifySource.wanted(make_runtime(store, tmp_path))
    assert PgNotifySource.wanted(make_runtime(store, tmp_path, {"schema": {"assets": {"x": {"event_trigger": True}}}}))


def test_it_emits_a_check_when_a_sqlite_schema_version_moves(store, tmp_path):
    path = tmp_path / "data" / "app.db"
    path.parent.mkdir()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    emitted = Emitted()
    source = SqliteSchemaSource(rt, emitted)
    source.start()
    try:
        for i in range(20):  # data writes touch the file but not the schema
            db.execute(f"INSERT INTO t VALUES ({i})")
        assert not emitted.wait(1.0)
        db.execute("ALTER TABLE t ADD COLUMN name TEXT")
        assert emitted.wait(5.0)
    finally:
        source.stop()
        db.close()
    task, kwargs = emitted.calls[0]
    assert task == "schema.check" and kwargs["asset_id"] == asset_id
    assert kwargs["context"]["source"] == "file"
    assert kwargs["context"]["schema_version"] > kwargs["context"]["previous_schema_version"]


def test_stopping_many_listeners_waits_once_not_once_per_listener(store, tmp_path, pg_database):
    rt = make_runtime(store, tmp_path, {"schema": {"event_triggers": True}})
    rt.settings.server_connection_budget = 13
    rt.settings.server_connection_share = 0.5
    event_trigger.install(pg_database[1])
    ids = [add_asset(store, name=f"db-{i}", engine="postgresql", connection=pg_connection(pg_database[1]))
           for i in range(12)]
    source = PgNotifySource(rt, Emitted())
    source.start()
    try:
        assert sorted(source.listeners) == ids, "a budget of 13 leaves 12 LISTEN slots"
        assert all(source.listeners[i][1].listening.wait(10) for i in ids)
    finally:
        started = time.monotonic()
        source.stop()
        took = time.monotonic() - started
    # Each listener wakes within a second; one after another, twelve would take several seconds.
    assert took < 2.0, took
    assert source.listeners == {}


def test_the_sqlite_source_keeps_state_only_for_current_assets_and_watches_a_bounded_number_of_directories(
        store, tmp_path, monkeypatch):
    from sqlalchemy import update

    from monitor_app.store.models import Asset
    from workers.watch_sources import sqlite_schema

    monkeypatch.setattr(sqlite_schema, "MAX_WATCHED_DIRECTORIES", 2)
    rt = make_runtime(store, tmp_path)
    ids = []
    for i in range(3):
        path = tmp_path / f"dir{i}" / "app.db"
        path.parent.mkdir()
        sqlite3.connect(path).execute("CREATE TABLE t (id INTEGER)").connection.close()
        ids.append(add_asset(store, name=f"app-{i}", engine="sqlite", connection={"path": str(path)}))
    emitted = Emitted()
    source = SqliteSchemaSource(rt, emitted)
    threads_before = threading.active_count()
    source.start()
    try:
        assert len(source.versions) == 3 and len(source._watches) == 2 and source.unwatched_directories == 1
        # watchdog runs two threads per watched directory (emitter, inotify reader), plus the
        # observer and the refresher: three directories would make eight.
        assert threading.active_count() - threads_before <= 2 * 2 + 2

        with store.session() as s:
            s.execute(update(Asset).where(Asset.id.in_(ids[:2])).values(status="gone"))
        source.refresh()
        assert list(source.files.values()) == [ids[2]] and len(source.versions) == 1
        assert list(source._watches) == [str(tmp_path / "dir2")] and source.unwatched_directories == 0

        db = sqlite3.connect(tmp_path / "dir2" / "app.db", isolation_level=None)
        db.execute("ALTER TABLE t ADD COLUMN name TEXT")
        db.close()
        assert emitted.wait(5.0) and emitted.calls[0][1]["asset_id"] == ids[2]
    finally:
        source.stop()


def test_the_pg_notify_sources_threads_and_state_follow_the_budget_and_the_targets_not_the_events(
        store, tmp_path, pg_database):
    from sqlalchemy import update

    from monitor_app.schema import precheck
    from monitor_app.store.models import Asset
    from monitor_app.store.models.schema import SchemaWatchState

    rt = make_runtime(store, tmp_path, {"schema": {"event_triggers": True}})
    rt.settings.schema_fallback_interval = 0.2
    event_trigger.install(pg_database[1])
    ids = [add_asset(store, name=f"db-{i}", engine="postgresql", connection=pg_connection(pg_database[1]))
           for i in range(40)]
    db = PgScratch(pg_database[1])
    try:
        import psycopg2

        marker_conn = psycopg2.connect(pg_database[1])
        marker = precheck.postgres_marker(marker_conn)
        marker_conn.close()
        with store.session() as s:
            s.add_all([SchemaWatchState(asset_id=i, marker=marker) for i in ids])
        threads_before = threading.active_count()
        emitted = Emitted()
        source = PgNotifySource(rt, emitted)
        source.start()
        try:
            (fallback,) = source.fallbacks.values()
            deadline = time.monotonic() + 30
            while fallback.rounds < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert fallback.rounds >= 3
            listeners = len(source.listeners)
            assert 1 <= listeners <= rt.settings.server_connection_budget - 1
            # Listeners, one pre-check thread, the refresher and the slot renewer: not one per database.
            assert threading.active_count() - threads_before <= listeners + 3
            for n in range(30):  # events: each moves the marker; state stays one entry per target
                db.run(f"CREATE TABLE burst_{n} (id integer)")
            time.sleep(1.0)
            assert len(fallback.seen) <= 40 - listeners and len(fallback.checked_at) <= 40 - listeners
            assert threading.active_count() - threads_before <= listeners + 3

            with store.session() as s:
                s.execute(update(Asset).where(Asset.id.in_(ids[:30])).values(status="gone"))
            source.refresh()
            remaining = set(ids[30:])
            assert {t.asset_id for t in fallback.targets} | set(source.listeners) == remaining
            for state in (fallback.seen, fallback.counted, fallback.checked_at, fallback.databases):
                assert set(state) <= remaining
        finally:
            source.stop()
    finally:
        db.close()
