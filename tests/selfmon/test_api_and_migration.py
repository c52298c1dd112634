"""`/healthz` reports dbmon's parts without secrets and keeps its code on store and broker;
`GET /api/v1/system` needs the viewer role; the migration creates and drops the tables."""

from __future__ import annotations

import os
import socket

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select

from monitor_app.access.api_keys import create_key
from monitor_app.platform.task_queues import QUEUES
from monitor_app.store import Base
from monitor_app.store import models  # noqa: F401
from monitor_app.store.base import utcnow
from monitor_app.store.migrate import alembic_config, upgrade
from monitor_app.store.models.selfmon import ComponentHeartbeat
from tests.harness import wait_for
from tests.selfmon.conftest import beat, healthy_deployment, make_runtime

TOKEN = "tok-9f8e7d"


def client(store, tmp_path, **overrides):
    from api import create_app

    rt = make_runtime(store, tmp_path, **overrides)
    return create_app(rt).test_client()


def test_healthz_shows_each_part_but_answers_on_store_and_broker_only(store, tmp_path):
    now = utcnow()
    healthy_deployment(store, now)
    api = client(store, tmp_path)
    healthy = api.get("/healthz")
    assert healthy.status_code == 200 and healthy.json["checks"]["database"]["ok"]
    parts = healthy.json["components"]
    assert parts["workers"]["ok"] and parts["beat"]["ok"] and parts["watcher"]["ok"]
    assert set(parts["watch_sources"]) == {"config", "files"}
    assert "host-a" not in healthy.get_data(as_text=True)

    beat(store, "worker", "w1@host-a", now, queues=[q for q in QUEUES if q != "alerts"])
    beat(store, "beat", "beat@host-a", now, detail={"stopped": True})
    degraded = api.get("/healthz")
    assert degraded.status_code == 200  # a dead beat or queue shows, but does not take the API out
    parts = degraded.json["components"]
    assert parts["workers"]["queues_without_consumer"] == ["alerts"] and parts["beat"]["ok"] is False
    me = wait_for(lambda: api_rows(store), 5, what="the API process's own row")  # written off the request thread
    assert [row.instance for row in me] == [f"api@{socket.gethostname()}:{os.getpid()}"]


def api_rows(store) -> list[ComponentHeartbeat]:
    with store.session() as s:
        return list(s.scalars(select(ComponentHeartbeat).where(ComponentHeartbeat.kind == "api")))


def test_the_system_endpoint_needs_a_viewer_key_and_never_shows_the_deadman_url(store, tmp_path):
    healthy_deployment(store, utcnow())
    api = client(store, tmp_path, deadman_url=f"https://hc-ping.example.org/ping/{TOKEN}?t={TOKEN}")
    assert api.get("/api/v1/system").status_code == 401
    with store.session() as s:
        key = create_key(s, name="v", role="viewer")[1]
    resp = api.get("/api/v1/system", headers={"X-API-Key": key})
    assert resp.status_code == 200
    body = resp.json
    assert body["healthy"] is True and body["problems"] == [] and body["queues"]["schema"]["consumers"] == 1
    assert body["deadman"]["target"] == "hc-ping.example.org" and TOKEN not in resp.get_data(as_text=True)
    assert {c["kind"] for c in body["components"]} == {"worker", "beat", "watcher", "watch_source"}


def test_the_migration_creates_the_tables_as_modelled_and_drops_them(blank_store_url):
    engine = create_engine(blank_store_url)
    try:
        upgrade(blank_store_url)
        with engine.connect() as conn:
            drift = [d for d in compare_metadata(MigrationContext.configure(conn), Base.metadata)
                     if "component_heartbeats" in repr(d) or "selfmon_state" in repr(d)]
        assert drift == []
        command.downgrade(alembic_config(blank_store_url), "files_0001")
        tables = set(inspect(engine).get_table_names())
        assert not {"component_heartbeats", "selfmon_state"} & tables and "task_runs" in tables
        upgrade(blank_store_url)
        assert {"component_heartbeats", "selfmon_state"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
