"""No silent stop: real collector failures become one check_failed event, recovery one check_recovered."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select

from monitor_app.access.api_keys import create_key
from monitor_app.errors import DbmonError
from monitor_app.posture.check import run_check as posture_check
from monitor_app.schema.check import run_check as schema_check
from monitor_app.store.models import Event
from tests.posture.clusters import PG_BIN, PrivateCluster, _as_postgres
from tests.schema.conftest import add_asset, make_runtime, pg_connection
from tests.services import create_pg_database, drop_pg_database, pg_admin_connect


def health_events(store) -> list[tuple[str, int | None]]:
    with store.session() as s:
        return [(e.type, e.asset_id) for e in s.scalars(
            select(Event).where(Event.type.like("%.check_%")).order_by(Event.id))]


def failing_check(run, rt, asset_id: int) -> str:
    with pytest.raises(DbmonError) as info:
        run(rt, asset_id)
    return info.value.message


def api_collectors(rt, store, **params) -> dict:
    from api import create_app

    with store.session() as s:
        key = create_key(s, name="viewer", role="viewer")[1]
    app = create_app(rt)
    client = app.test_client()
    response = client.get("/api/v1/collectors", query_string=params, headers={"X-API-Key": key})
    assert response.status_code == 200, response.get_data(as_text=True)
    page = client.get("/", headers={"X-API-Key": key}).get_data(as_text=True)
    return {**response.get_json(), "page": page}


def test_an_unreadable_sqlite_file_is_said_once_and_its_recovery_once(store, tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    good = path.read_bytes()
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    schema_check(rt, asset_id)
    assert health_events(store) == []  # success with no failure before: nothing to say

    path.write_bytes(b"garbage where a database was" * 100)
    errors = [failing_check(schema_check, rt, asset_id) for _ in range(4)]
    assert "cannot read SQLite file" in errors[0]
    assert health_events(store) == [("schema.check_failed", asset_id)]  # four failures, one event
    with store.session() as s:
        failed = s.scalar(select(Event).where(Event.type == "schema.check_failed"))
        assert failed.payload["collector"] == "schema" and failed.payload["failures"] == 1
        assert "cannot read SQLite file" in failed.payload["error"] and failed.severity == "warning"
    view = api_collectors(rt, store, failing="true")
    [item] = view["items"]
    assert (item["collector"], item["asset"], item["failing"], item["failures"]) == ("schema", "app-db", True, 4)
    assert view["failing"] == 1 and 'data-collector="schema"' in view["page"]

    path.write_bytes(good)
    schema_check(rt, asset_id)
    schema_check(rt, asset_id)
    assert health_events(store) == [("schema.check_failed", asset_id), ("schema.check_recovered", asset_id)]
    with store.session() as s:
        recovered = s.scalar(select(Event).where(Event.type == "schema.check_recovered"))
        assert recovered.payload["failures"] == 4 and "cannot read SQLite file" in recovered.payload["last_error"]
    view = api_collectors(rt, store)
    assert view["failing"] == 0 and view["items"][0]["failures"] == 0
    assert "All collectors working." in view["page"]


def test_a_dropped_database_is_a_failing_schema_check_until_it_is_back(store, tmp_path, deferred_drops):
    name, url = create_pg_database()
    try:
        rt = make_runtime(store, tmp_path)
        asset_id = add_asset(store, name="orders-db", engine="postgresql", connection=pg_connection(url))
        schema_check(rt, asset_id)
        drop_pg_database(name)
        assert "does not exist" in failing_check(schema_check, rt, asset_id)
        failing_check(schema_check, rt, asset_id)
        assert health_events(store) == [("schema.check_failed", asset_id)]
        admin = pg_admin_connect()
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        schema_check(rt, asset_id)
        assert health_events(store) == [("schema.check_failed", asset_id), ("schema.check_recovered", asset_id)]
    finally:
        deferred_drops.drop(name)


class RestartableCluster(PrivateCluster):
    """A private cluster that can be stopped and started again on the same port and data."""

    def pause(self) -> None:
        done = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        assert done.returncode == 0, done.stderr
        self.pid = None


@pytest.fixture()
def cluster():
    server = RestartableCluster()
    try:
        server.start(listen="")
        yield server
    finally:
        server.stop()


def test_a_stopped_server_fails_schema_and_posture_after_the_configured_streak(store, tmp_path, cluster,
                                                                               monkeypatch):
    monkeypatch.setenv("DBMON_COLLECTOR_FAILURES_BEFORE_EVENT", "3")
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="private-pg", engine="postgresql", connection=cluster.connection())
    schema_check(rt, asset_id)
    posture_check(rt, asset_id)

    cluster.pause()
    for attempt in (1, 2):
        failing_check(schema_check, rt, asset_id)
        failing_check(posture_check, rt, asset_id)
        assert health_events(store) == [], f"no event before the third failure (attempt {attempt})"
    failing_check(schema_check, rt, asset_id)
    failing_check(posture_check, rt, asset_id)
    failing_check(schema_check, rt, asset_id)
    assert health_events(store) == [("schema.check_failed", asset_id), ("posture.check_failed", asset_id)]
    with store.session() as s:
        failed = s.scalar(select(Event).where(Event.type == "posture.check_failed"))
        assert failed.payload["failures"] == 3 and "cannot connect to PostgreSQL" in failed.payload["error"]

    cluster.start(listen="")
    schema_check(rt, asset_id)
    posture_check(rt, asset_id)
    assert health_events(store)[2:] == [("schema.check_recovered", asset_id), ("posture.check_recovered", asset_id)]


def test_a_collector_that_starts_failing_brings_the_assets_probe_forward(store, tmp_path):
    from datetime import timedelta

    from monitor_app.assets import reachability_check
    from monitor_app.store.base import utcnow
    from monitor_app.store.models import Asset

    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    reachability_check.run_check(rt, asset_id)
    with store.session() as s:
        asset = s.get(Asset, asset_id)
        assert asset.status == "up"
        asset.next_check_at = utcnow() + timedelta(hours=1)  # its slot, as with a long interval
    with store.session() as s:
        assert asset_id not in reachability_check.due_assets(s, utcnow())
    path.rename(tmp_path / "moved.db")
    failing_check(schema_check, rt, asset_id)
    with store.session() as s:  # the schema check failed: the probe is due at the next sweep
        assert asset_id in reachability_check.due_assets(s, utcnow())
    reachability_check.run_check(rt, asset_id)
    with store.session() as s:
        assert s.get(Asset, asset_id).status == "down"
        types = [e.type for e in s.scalars(select(Event).where(Event.asset_id == asset_id).order_by(Event.id))]
    assert types[-2:] == ["schema.check_failed", "asset.down"]
