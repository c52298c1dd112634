"""The real processes: `dbmon watcher` follows the engine, a `dbmon worker` runs the tasks."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from monitor_app.store.models import Asset, Event, TaskRun
from tests.containers.conftest import wait_for
from tests.containers.deployment import Deployment

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(params=["embedded", "distributed"])
def deployment(request, tmp_path, docker_engine, images):
    d = Deployment(tmp_path, mode=request.param)
    yield d
    d.close()


def _asset(d, name):
    with d.store.session() as s:
        return s.scalar(select(Asset).where(Asset.source == "docker", Asset.external_id == name))


def _types(d, name):
    with d.store.session() as s:
        a = s.scalar(select(Asset).where(Asset.external_id == name))
        return [] if a is None else list(s.scalars(select(Event.type).where(Event.asset_id == a.id,
                                                                            Event.type.like("container.%"))
                                                   .order_by(Event.observed_at, Event.id)))


def test_the_watcher_and_worker_register_a_new_database_within_seconds(deployment, runner):
    deployment.start_worker()
    deployment.start_watcher()
    runner.run("dbmct/mongo:7", "mongo", env={"MONGO_INITDB_ROOT_USERNAME": "root"})
    asset = wait_for(lambda: _asset(deployment, runner.name("mongo")), 20, 0.05)
    assert asset.engine == "mongodb"
    wait_for(lambda: _types(deployment, runner.name("mongo"))[:2] == ["container.create", "container.start"], 20)
    with deployment.store.session() as s:
        tasks = dict(s.execute(select(TaskRun.name, func.count()).group_by(TaskRun.name)).all())
        kwargs = [r.kwargs for r in s.scalars(select(TaskRun).where(TaskRun.name == "containers.handle_event"))]
    assert tasks.get("containers.reconcile", 0) >= 1  # the resync after connecting
    # The watcher sends ids and event data only: no labels, no environment.
    assert all(set(k) == {"container_id", "action", "time_nano", "attributes"} for k in kwargs)
    assert all(set(k["attributes"]) <= {"name", "image", "exitCode", "signal", "oldName", "dbmon.after_stop",
                                        "dbmon.after_oom"} for k in kwargs)


def test_containers_changing_while_the_watcher_is_down_lose_no_event(deployment, runner):
    deployment.start_worker()
    deployment.start_watcher()
    a = runner.run("dbmct/postgres:16", "a", env={"POSTGRES_PASSWORD": "x"})
    wait_for(lambda: "container.start" in _types(deployment, runner.name("a")), 20)
    deployment.stop("watcher")

    runner.client.api.kill(a)
    runner.run("dbmct/redis:7", "b")
    deployment.start_watcher()
    # Tasks for one container may race to register it; the loser retries a moment later.
    wait_for(lambda: _types(deployment, runner.name("b")) == ["container.create", "container.start"], 20)
    wait_for(lambda: _types(deployment, runner.name("a")) == ["container.create", "container.start", "container.kill",
                                                              "container.die"], 20)


def test_dbmon_discover_prints_only_databases_as_json(deployment, runner):
    runner.run("dbmct/postgres:16", "pg", env={"POSTGRES_PASSWORD": "secret-value"},
               labels={"com.example.team": "payments"})
    runner.run("dbmct/nginx:1.25", "web")
    runner.run("dbmct/adminer:4", "adminer")
    out = deployment.cli("discover", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    ours = {n: r for n, r in rows.items() if n.startswith(f"dbmt-{runner.tag}-")}
    assert list(ours) == [runner.name("pg")]
    pg = ours[runner.name("pg")]
    assert {"container_id", "name", "image", "engine", "ports", "confidence", "reasons"} <= set(pg)
    assert pg["engine"] == "postgresql" and pg["ports"] == [5432] and pg["confidence"] >= 0.9
    assert pg["asset_id"] == _asset(deployment, runner.name("pg")).id
    assert "secret-value" not in out.stdout

    table = deployment.cli("discover")
    assert runner.name("pg") in table.stdout and runner.name("web") not in table.stdout


def test_dbmon_discover_explains_an_unreachable_engine(deployment):
    out = deployment.cli("discover", "--docker-url", "unix:///nonexistent/docker.sock")
    assert out.returncode == 1
    assert out.stderr.startswith("error: docker engine unreachable") and "Traceback" not in out.stderr


def test_a_started_service_is_probed_and_its_status_follows_the_container(deployment, runner):
    from tests.services import free_port

    deployment.start_worker()
    deployment.start_watcher()
    port = free_port()
    cid = runner.run("dbmct/redis:7", "cache", network="host",
                     command=["/bin/sh", "-c", f"sleep 0.5; exec httpd -f -p 127.0.0.1:{port}"])
    name = runner.name("cache")

    def status(want):
        a = _asset(deployment, name)
        return a if a is not None and a.status == want else None

    # Not listening for half a second: the probe task retries until the port opens.
    up = wait_for(lambda: status("up"), 60, 0.1)
    assert up.details["endpoints"][0]["port"] == port
    assert up.details["ports_probe"][f"127.0.0.1:{port}"]["up"] is True
    runner.client.api.kill(cid)
    # SIGKILL is a crash: down at once from the die event, then the probe that follows sees the port shut.
    down = wait_for(lambda: (a := status("down")) and not a.details["ports_probe"][f"127.0.0.1:{port}"]["up"] and a,
                    60, 0.1)
    with deployment.store.session() as s:
        types = set(s.scalars(select(Event.type).where(Event.asset_id == up.id)))
        [crash] = s.scalars(select(Event).where(Event.asset_id == down.id, Event.type == "asset.down")).all()
    assert {"asset.up", "asset.down", "service.port_down"} <= types
    assert crash.payload == {**crash.payload, "exit_code": 137, "planned": False}  # one down, from the die
