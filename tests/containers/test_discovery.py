"""Reconcile against the real Docker engine: what becomes an asset, what does not, and why."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from monitor_app.containers.discovery import reconcile
from monitor_app.store.models import Asset, Event
from monitor_app.store.models.containers import ContainerState

pytestmark = pytest.mark.docker


def _assets(store):
    with store.session() as s:
        return {a.name: a for a in s.scalars(select(Asset).where(Asset.source == "docker"))}


def _ours(runner, names):
    return {n: v for n, v in names.items() if n.startswith(f"dbmt-{runner.tag}-")}


def test_it_registers_database_containers_and_nothing_else(store, runner, containers_config, tmp_path):
    data = tmp_path / "pgdata"
    data.mkdir()
    runner.run("dbmct/postgres:16", "pg", env={"POSTGRES_PASSWORD": "s3cret-value"},
               binds={str(data): {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
               restart_policy={"Name": "unless-stopped"})
    runner.run("dbmct/mysql:8", "my", env={"MYSQL_ROOT_PASSWORD": "s3cret-value"})
    runner.run("dbmct/redis:7", "cache")
    runner.run("dbmct/mongo:7", "mongo", env={"MONGO_INITDB_ROOT_USERNAME": "root"})
    runner.run("dbmct/nginx:1.25", "web")
    runner.run("dbmct/adminer:4", "adminer", env={"ADMINER_DEFAULT_SERVER": "pg"})
    runner.run("dbmct/postgres-exporter:0.15", "exporter",
               env={"DATA_SOURCE_NAME": "postgresql://u:s3cret-value@pg/db"})
    runner.run("dbmct/base:1", "app", env={"DATABASE_URL": "postgres://u:s3cret-value@pg/db",
                                                "POSTGRES_PASSWORD": "s3cret-value"})
    runner.run("dbmct/postgres:16", "client", env={"PGHOST": "pg", "PGPASSWORD": "s3cret-value"})
    runner.run("dbmct/postgres:16", "optout", labels={"dbmon.enable": "false"})
    runner.run("dbmct/base:1", "forced", labels={"dbmon.engine": "clickhouse"})
    runner.run("dbmct/nginx:1.25", "port-only", command=["/bin/sleep", "3600"])

    with store.session() as s:
        out = reconcile(s, runner.client, containers_config)
    assert out.seen >= 12

    assets = _ours(runner, _assets(store))
    assert {n.rsplit("-", 1)[-1]: a.engine for n, a in assets.items()} == {
        "pg": "postgresql", "my": "mysql", "cache": "redis", "mongo": "mongodb", "forced": "clickhouse"}
    pg = assets[runner.name("pg")]
    assert pg.kind == "database" and pg.status == "unknown"
    assert pg.details["restart_policy"]["name"] == "unless-stopped"
    assert pg.details["data_dirs"] == [{"host_path": str(data), "container_path": "/var/lib/postgresql/data",
                                        "type": "bind"}]
    assert pg.details["identification"]["confidence"] >= 0.9
    assert pg.details["network_mode"] == "none"

    with store.session() as s:
        states = {st.name: st for st in s.scalars(select(ContainerState))}
        dumped = json.dumps([st.record for st in states.values()] + [a.details for a in assets.values()])
        events = s.scalars(select(Event).where(Event.type == "asset.registered")).all()
    assert "s3cret-value" not in dumped, "environment values must never be stored"
    assert "POSTGRES_PASSWORD" in states[runner.name("pg")].record["env_names"]
    assert not states[runner.name("adminer")].is_database
    assert any("tool" in r for r in states[runner.name("adminer")].reasons)
    assert any("exporter" in r for r in states[runner.name("exporter")].reasons)
    assert any("client connection env" in r for r in states[runner.name("app")].reasons)
    assert states[runner.name("optout")].reasons == ["label dbmon.enable=false"]
    assert len([e for e in events if e.payload["container_id"] in {a.details["container_id"] for a in assets.values()}]) == 5


def test_it_marks_removed_containers_gone_and_revives_them_by_name(store, runner, containers_config):
    first = runner.run("dbmct/redis:7", "cache")
    with store.session() as s:
        reconcile(s, runner.client, containers_config)
    runner.remove(first)
    with store.session() as s:
        out = reconcile(s, runner.client, containers_config)
    assert runner.name("cache") in out.gone
    assert _assets(store)[runner.name("cache")].status == "gone"

    second = runner.run("dbmct/redis:7", "cache")
    with store.session() as s:
        out = reconcile(s, runner.client, containers_config)
    assert runner.name("cache") in out.revived
    asset = _assets(store)[runner.name("cache")]
    assert asset.status == "unknown" and asset.gone_at is None and asset.details["container_id"] == second
    with store.session() as s:
        types = [e.type for e in s.scalars(select(Event).where(Event.asset_id == asset.id).order_by(Event.id))]
    assert types == ["asset.registered", "asset.removed", "asset.revived"]


def test_a_second_reconcile_changes_nothing(sqlite_store, runner, containers_config):
    runner.run("dbmct/postgres:16", "pg", env={"POSTGRES_PASSWORD": "x"})
    with sqlite_store.session() as s:
        reconcile(s, runner.client, containers_config)
    with sqlite_store.session() as s:
        before = s.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
        out = reconcile(s, runner.client, containers_config)
        after = s.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    assert not out.created and not out.changed and not out.revived and before == after


def test_it_records_a_change_of_configuration(sqlite_store, runner, containers_config):
    cid = runner.run("dbmct/postgres:16", "pg", env={"POSTGRES_PASSWORD": "x"})
    with sqlite_store.session() as s:
        reconcile(s, runner.client, containers_config)
    runner.client.api.update_container(cid, restart_policy={"Name": "always"})
    with sqlite_store.session() as s:
        out = reconcile(s, runner.client, containers_config)
        change = s.scalars(select(Event).where(Event.type == "asset.changed")).one()
    assert out.changed == [runner.name("pg")]
    assert change.payload["changed"] == ["restart_policy"]
    assert change.payload["after"]["restart_policy"]["name"] == "always"
