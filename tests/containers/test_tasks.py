"""The task bodies in-process (the worker processes run them in test_deployment): what they
dispatch next, and how they treat gone assets, slow starts and concurrent registration."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor_app.errors import NotFound, ProbeError
from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings
from monitor_app.store.models import Asset
from tests.services import free_port
from workers.tasks.containers import handle_container_event, probe_container_asset, reconcile_containers

pytestmark = pytest.mark.docker


@pytest.fixture()
def rt(tmp_path, sqlite_store, monkeypatch):
    monkeypatch.setenv("TASKS_PG_PW", "pw")
    config = tmp_path / "dbmon.yaml"
    config.write_text("containers:\n  credentials:\n    - match: {labels: {team: orders}}\n"
                      "      password_env: TASKS_PG_PW\n")
    sent: list[tuple[str, dict]] = []
    runtime = Runtime(load_settings(data_dir=tmp_path, database_url=sqlite_store.url, secret_key="k",
                                    config_file=config), sender=lambda name, kwargs, run_id, queue: sent.append((name, kwargs)))
    runtime.__dict__["store"] = sqlite_store
    runtime.sent = sent
    yield runtime


def _asset(rt, name):
    with rt.store.session() as s:
        return s.scalar(select(Asset).where(Asset.external_id == name))


def test_reconcile_probes_new_assets_and_hands_postgresql_with_credentials_over(rt, runner, monkeypatch):
    runner.run("dbmct/postgres:16", "orders", env={"POSTGRES_PASSWORD": "x"}, labels={"team": "orders"})
    runner.run("dbmct/redis:7", "cache")
    result = reconcile_containers.domain_fn(rt)
    assert {runner.name("orders"), runner.name("cache")} <= set(result["created"])
    orders = _asset(rt, runner.name("orders"))
    assert orders.details["monitoring"]["credentials"] == "containers.credentials[0]"
    assert rt.credentials.open(orders.secret) == {"password": "pw"}
    assert ("schema.check", {"asset_id": orders.id}) in rt.sent
    assert ("containers.probe", {"asset_id": orders.id}) in rt.sent
    assert not [k for n, k in rt.sent if n == "schema.check" and k["asset_id"] != orders.id]


def test_handle_event_registers_and_asks_for_a_probe(rt, runner):
    cid = runner.run("dbmct/mongo:7", "mongo")
    result = handle_container_event.domain_fn(rt, container_id=cid, action="start", time_nano=1,
                                              attributes={"name": runner.name("mongo")})
    asset = _asset(rt, runner.name("mongo"))
    assert result["created"] == [runner.name("mongo")] and ("containers.probe", {"asset_id": asset.id}) in rt.sent


def test_probe_waits_for_a_starting_server_and_skips_what_it_cannot_reach(rt, runner):
    port = free_port()
    runner.run("dbmct/redis:7", "slow", network="host",
                command=["/bin/sh", "-c", f"sleep 3; exec httpd -f -p 127.0.0.1:{port}"])
    reconcile_containers.domain_fn(rt)
    slow = _asset(rt, runner.name("slow"))
    with pytest.raises(ProbeError, match="not listening"):
        probe_container_asset.domain_fn(rt, asset_id=slow.id)  # the task's retry backoff waits for it

    isolated = runner.run("dbmct/redis:7", "isolated")
    reconcile_containers.domain_fn(rt)
    iso = _asset(rt, runner.name("isolated"))
    assert probe_container_asset.domain_fn(rt, asset_id=iso.id)["skipped"] == "no endpoint reachable from dbmon"

    runner.remove(isolated)
    reconcile_containers.domain_fn(rt)
    assert probe_container_asset.domain_fn(rt, asset_id=iso.id)["skipped"] == "the container is gone"
    with pytest.raises(NotFound):
        probe_container_asset.domain_fn(rt, asset_id=999999)

    from sqlalchemy import update

    from monitor_app.store.models import TaskRun

    with rt.store.session() as s:  # as if a worker had run the probes reconciling queued
        s.execute(update(TaskRun).where(TaskRun.name == "containers.probe").values(status="done"))
    fan_out = probe_container_asset.domain_fn(rt)
    assert slow.id in fan_out["asset_ids"] and iso.id not in fan_out["asset_ids"]
