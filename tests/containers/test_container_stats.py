"""Docker stats of database containers on the real engine: CPU, memory, restarts, stopped and removed."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor_app.containers.inventory import connect
from monitor_app.errors import DbmonError
from monitor_app.metrics.container_stats import read_container
from monitor_app.metrics.container_tier import dispatch_due, run_poll
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, Event
from tests.metrics.pg_fast_helpers import all_latest
from tests.schema.conftest import make_runtime

# Keeps 20 MB in a shell variable, then spins: CPU and memory a test can predict.
BUSY = ["/bin/sh", "-c", 'x=$(head -c 20000000 /dev/zero | tr "\\0" a); while :; do :; done']


def container_asset(store, name: str, container_id: str) -> int:
    with store.session() as s:
        asset = Asset(kind="database", engine="redis", name=name, source="docker", external_id=name,
                      labels={}, connection={}, details={"container_id": container_id}, status="up")
        s.add(asset)
        s.flush()
        return asset.id


def events(store) -> list[str]:
    with store.session() as s:
        return [e.type for e in s.scalars(select(Event).where(Event.type.like("metrics.container.%")).order_by(Event.id))]


def test_cpu_and_memory_of_a_busy_container_are_what_its_limits_allow(store, tmp_path, runner, docker_engine):
    cid = runner.run("dbmct/redis:7", "busy", command=BUSY, nano_cpus=300_000_000, mem_limit="64m")
    rt = make_runtime(store, tmp_path)
    asset_id = container_asset(store, runner.name("busy"), cid)
    time.sleep(1.5)  # the 20 MB are in place
    t0 = utcnow()
    assert run_poll(rt, asset_id, lambda: docker_engine, now=t0)["rates"] == "first poll"
    time.sleep(2)
    second = run_poll(rt, asset_id, lambda: docker_engine, now=t0 + timedelta(seconds=2))
    assert second["rates"] == "interval" and second["running"]
    got = all_latest(store, asset_id)
    # A third of a CPU at most, busy all the time: about 30 % as `docker stats` shows it (less
    # when the host's own cores are busy, never more than the cap).
    assert 5 <= got["container.cpu_percent"] <= 40, got
    assert got["container.memory_limit_bytes"] == 64 * 1024 * 1024
    assert 18e6 <= got["container.memory_bytes"] <= 64e6
    assert got["container.memory_percent"] == pytest.approx(100 * got["container.memory_bytes"] / (64 * 1024 * 1024))
    assert got["container.pids"] >= 1 and got["container.restarts"] == 0 and got["container.oom_killed"] == 0


def test_a_restart_drops_the_interval_and_a_stopped_container_is_not_a_failure(store, tmp_path, runner,
                                                                                  docker_engine):
    cid = runner.run("dbmct/redis:7", "restarts")
    rt = make_runtime(store, tmp_path)
    asset_id = container_asset(store, runner.name("restarts"), cid)
    t0 = utcnow()
    run_poll(rt, asset_id, lambda: docker_engine, now=t0)
    docker_engine.api.restart(cid, timeout=0)
    assert run_poll(rt, asset_id, lambda: docker_engine, now=t0 + timedelta(seconds=5))["rates"] == "server restarted"
    docker_engine.api.kill(cid)
    stopped = run_poll(rt, asset_id, lambda: docker_engine, now=t0 + timedelta(seconds=10))
    assert stopped["running"] is False and stopped["rates"] == "not running"
    assert events(store) == []


def test_a_removed_container_or_an_absent_engine_is_one_failure_event(store, tmp_path, runner, docker_engine):
    cid = runner.run("dbmct/redis:7", "removed")
    rt = make_runtime(store, tmp_path)
    asset_id = container_asset(store, runner.name("removed"), cid)
    runner.remove(cid)
    with pytest.raises(DbmonError, match="docker engine") as failed:
        run_poll(rt, asset_id, lambda: docker_engine)
    assert failed.value.permanent
    with pytest.raises(DbmonError, match="docker engine"):
        run_poll(rt, asset_id, lambda: connect("unix:///nonexistent/docker.sock", timeout=2))
    assert events(store) == ["metrics.container.check_failed"]


def test_hostile_engine_answers_are_left_out_not_trusted():
    class Engine:
        def inspect_container(self, _):
            return {"State": {"Running": True, "StartedAt": "not a time", "OOMKilled": "yes"}, "RestartCount": "2"}

        def stats(self, *_, **__):
            return {"cpu_stats": {"cpu_usage": {"total_usage": "1"}, "online_cpus": True},
                    "memory_stats": {"usage": 10.0, "limit": 0, "stats": []}, "pids_stats": None,
                    "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 5}, "junk"]},
                    "networks": ["eth0"]}

    reading = read_container(Engine(), "c1")
    assert reading.running and reading.started is None
    assert reading.gauges == {"container.oom_killed": 0.0, "container.memory_bytes": 10.0}
    assert reading.counters == {"block_read_bytes": 5.0, "block_write_bytes": 0.0}


def test_every_container_asset_falls_due_and_others_do_not(store, tmp_path):
    rt = make_runtime(store, tmp_path)
    sent = []
    rt.dispatch_many = lambda task, kwargs_list: sent.extend((task, kw["asset_id"]) for kw in kwargs_list)
    asset_id = container_asset(store, "pg-1", "c" * 64)
    with store.session() as s:
        s.add(Asset(kind="database", engine="postgresql", name="declared", source="config", external_id="declared",
                    labels={}, connection={}, details={}, status="up"))
    assert dispatch_due(rt)["asset_ids"] == [asset_id] and sent == [("metrics.container", asset_id)]
