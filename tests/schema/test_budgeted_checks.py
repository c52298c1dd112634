"""Checks and probes on a server whose slots are all taken: deferred, not failed; visible in the API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor_app.access.api_keys import create_key
from monitor_app.assets.connection_budget import BudgetExhausted, ConnectionBudget, server_key
from monitor_app.assets.reachability_check import run_check as probe_check
from monitor_app.posture.check import run_check as posture_check
from monitor_app.schema.check import run_check as schema_check
from monitor_app.store.models import Asset, Event
from monitor_app.store.models.collectors import CollectorHealth
from tests.schema.conftest import add_asset, make_runtime, pg_connection


def servers_api(rt, store) -> dict:
    from api import create_app

    with store.session() as s:
        key = create_key(s, name="viewer", role="viewer")[1]
    response = create_app(rt).test_client().get("/api/v1/servers", headers={"X-API-Key": key})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_work_on_a_server_without_a_free_slot_is_deferred_not_failed(store, tmp_path, pg_database):
    rt = make_runtime(store, tmp_path)
    rt.settings.server_connection_wait = 0.3
    connection = pg_connection(pg_database[1])
    asset_id = add_asset(store, name="appdb", engine="postgresql", connection=connection)
    server = server_key(connection)
    assert schema_check(rt, asset_id)["baseline"]  # the first connection reads the server's limits

    other_process = ConnectionBudget(store, budget=rt.settings.server_connection_budget)
    leases = [other_process.try_acquire(server, "busy") for _ in range(rt.settings.server_connection_budget)]
    try:
        assert all(leases) and other_process.try_acquire(server, "one more") is None
        listed = servers_api(rt, store)
        (row,) = [item for item in listed["items"] if item["server"] == server]
        assert row["held"] == row["budget"] == rt.settings.server_connection_budget and row["databases"] == 1
        assert {slot["purpose"] for slot in row["slots"]} == {"busy"} and row["max_connections"] > 0

        for run in (schema_check, posture_check):
            with pytest.raises(BudgetExhausted, match="deferred"):
                run(rt, asset_id)
        with pytest.raises(BudgetExhausted):
            probe_check(rt, asset_id)
        with store.session() as s:
            assert s.scalars(select(CollectorHealth).where(CollectorHealth.failing.is_(True))).all() == []
            assert s.scalars(select(Event).where(Event.type.in_(["asset.down", "schema.check_failed",
                                                                   "posture.check_failed"]))).all() == []
            assert s.get(Asset, asset_id).status == "up"
    finally:
        other_process.close()
    assert schema_check(rt, asset_id)["asset_id"] == asset_id  # once a slot is free, it runs
    assert servers_api(rt, store)["held"] == 0


def test_a_server_given_its_own_budget_in_the_config_file_gets_it_everywhere(store, tmp_path, pg_database):
    connection = pg_connection(pg_database[1])
    server = server_key(connection)
    host, port = server.rsplit(":", 1)
    rt = make_runtime(store, tmp_path, {"servers": [{"host": host, "port": int(port), "connection_budget": 2}]})
    asset_id = add_asset(store, name="appdb", engine="postgresql", connection=connection)
    assert schema_check(rt, asset_id)["baseline"]  # reads the server's limits: its cap is above 2

    (row,) = [item for item in servers_api(rt, store)["items"] if item["server"] == server]
    assert (row["budget"], row["configured_budget"], row["budget_from"]) == (2, 2, "config")
    leases = [rt.connection_budget.try_acquire(server, "work") for _ in range(3)]
    try:
        assert all(leases[:2]) and leases[2] is None  # the default (3) would have given a third
    finally:
        rt.connection_budget.close()

    (rt.settings.config_file).write_text("servers: []\n")  # the default again, without a restart
    (row,) = [item for item in servers_api(rt, store)["items"] if item["server"] == server]
    assert (row["budget"], row["budget_from"]) == (rt.settings.server_connection_budget, "setting")
