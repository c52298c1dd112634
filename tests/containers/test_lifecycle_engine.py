"""Lifecycle events from the real engine through the cursor-based follower into the store."""

from __future__ import annotations

import docker
import pytest
from sqlalchemy import select

from monitor_app.store.models import Asset
from tests.containers.conftest import wait_for
from tests.containers.follow import Harness

pytestmark = pytest.mark.docker


@pytest.fixture()
def harness(sqlite_store, docker_engine, containers_config):
    h = Harness(sqlite_store, docker_engine, containers_config).start()
    yield h
    h.stop()


def test_it_follows_a_container_from_create_to_destroy(harness, runner):
    cid = runner.run("dbmct/postgres:16", "pg", env={"POSTGRES_PASSWORD": "x"})
    name = runner.name("pg")
    harness.wait_event(name, "container.start")
    runner.client.api.stop(cid, timeout=1)
    die = harness.wait_event(name, "container.die")[0]
    assert die.severity == "info" and die.payload["planned"] is True
    runner.remove(cid)
    harness.wait_event(name, "container.destroy")
    types = [e.type for e in harness.events(name)]
    assert types[:2] == ["container.create", "container.start"]
    assert {"container.kill", "container.die", "container.stop", "container.destroy"} <= set(types)
    with harness.store.session() as s:
        assert s.scalar(select(Asset.status).where(Asset.external_id == name)) == "gone"


def test_a_sigkill_and_a_crash_are_unplanned_but_a_sigterm_kill_is_planned(harness, runner):
    killed = runner.run("dbmct/postgres:16", "killed", env={"POSTGRES_PASSWORD": "x"})
    termed = runner.run("dbmct/postgres:16", "termed", env={"POSTGRES_PASSWORD": "x"},
                        command=["/bin/sh", "-c", "trap 'exit 143' TERM; while :; do sleep 0.1; done"])
    crashed = runner.run("dbmct/postgres:16", "crashed", env={"POSTGRES_PASSWORD": "x"},
                         command=["/bin/sh", "-c", "sleep 1; exit 3"])
    harness.wait_event(runner.name("killed"), "container.start")
    harness.wait_event(runner.name("termed"), "container.start")
    runner.client.api.kill(killed)  # SIGKILL: nothing a clean shutdown could have done
    died = harness.wait_event(runner.name("killed"), "container.die")[0]
    assert died.severity == "warning" and died.payload == {**died.payload, "exit_code": 137, "planned": False}
    runner.client.api.kill(termed, signal="TERM")
    died = harness.wait_event(runner.name("termed"), "container.die")[0]
    assert died.severity == "info" and died.payload == {**died.payload, "exit_code": 143, "planned": True}
    die = harness.wait_event(runner.name("crashed"), "container.die")[0]
    assert die.severity == "warning" and die.payload == {**die.payload, "exit_code": 3, "planned": False}
    assert die.payload["container_id"] == crashed


def test_restart_policy_restarts_are_unplanned_and_flapping_raises_severity(harness, runner):
    runner.run("dbmct/postgres:16", "flappy", env={"POSTGRES_PASSWORD": "x"},
               command=["/bin/sh", "-c", "sleep 0.3; exit 1"], restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})
    name = runner.name("flappy")
    restarts = harness.wait_event(name, "container.unplanned_restart", timeout=30)
    assert restarts[0].severity == "warning"
    flap = harness.wait_event(name, "container.flapping", timeout=30)
    assert len(flap) == 1 and flap[0].severity == "critical" and flap[0].payload["exits"] >= 3
    wait_for(lambda: len([e for e in harness.events(name) if e.type == "container.unplanned_restart"]) == 3, 30)


def test_it_reports_an_out_of_memory_kill(harness, runner):
    runner.run("dbmct/redis:7", "oom", command=["/bin/sh", "-c", "sleep 0.5; tail /dev/zero"],
               mem_limit="16m", memswap_limit="16m")
    name = runner.name("oom")
    assert harness.wait_event(name, "container.oom", timeout=30)[0].severity == "critical"
    die = harness.wait_event(name, "container.die", timeout=30)[0]
    assert die.severity == "critical" and die.payload["oom_killed"] is True and die.payload["exit_code"] == 137


def test_it_records_health_check_transitions(harness, runner):
    hc = {"Test": ["CMD-SHELL", "test ! -f /tmp/bad"], "Interval": 300_000_000, "Timeout": 1_000_000_000,
          "Retries": 1, "StartPeriod": 0}
    c = runner.client.api.create_container("dbmct/redis:7", name=runner.name("health"), healthcheck=hc,
                                           labels={"dbmon-test": "containers"},
                                           host_config=runner.client.api.create_host_config(network_mode="none"))
    runner.ids.append(c["Id"])
    runner.client.api.start(c["Id"])
    name = runner.name("health")
    healthy = harness.wait_event(name, "container.health_status", health="healthy")
    assert healthy[0].severity == "info"
    exec_id = runner.client.api.exec_create(c["Id"], ["/bin/sh", "-c", "echo > /tmp/bad"])
    runner.client.api.exec_start(exec_id)
    unhealthy = harness.wait_event(name, "container.health_status", health="unhealthy")
    assert unhealthy[0].severity == "warning"
    with harness.store.session() as s:
        asset = s.scalar(select(Asset).where(Asset.external_id == name))
        assert asset.details["health"] == "unhealthy"


def _lifecycle(harness, name):
    return [(e.type, e.payload.get("action")) for e in harness.events(name) if e.type != "container.flapping"]


def test_no_event_is_lost_or_doubled_when_the_watcher_restarts_during_changes(sqlite_store, docker_engine,
                                                                              containers_config, runner):
    first = Harness(sqlite_store, docker_engine, containers_config).start()
    a = runner.run("dbmct/postgres:16", "a", env={"POSTGRES_PASSWORD": "x"})
    first.wait_event(runner.name("a"), "container.start")
    first.stop()

    # While nobody watches: a new database appears, one is killed and removed, one is created only.
    b = runner.run("dbmct/mysql:8", "b", env={"MYSQL_ROOT_PASSWORD": "x"})
    runner.client.api.kill(a)
    runner.client.api.remove_container(a)
    runner.run("dbmct/redis:7", "c", start=False)
    runner.client.api.stop(b, timeout=1)

    second = Harness(sqlite_store, docker_engine, containers_config).start()
    second.wait_event(runner.name("b"), "container.stop")
    second.wait_event(runner.name("a"), "container.destroy")
    assert second.resyncs == 1
    assert [t for t, _ in _lifecycle(second, runner.name("a"))] == [
        "container.create", "container.start", "container.kill", "container.die", "container.destroy"]
    # `docker stop` sends SIGTERM, then SIGKILL once the timeout passes: one or two kills.
    b_types = [t for t, _ in _lifecycle(second, runner.name("b"))]
    assert [t for i, t in enumerate(b_types) if i == 0 or t != b_types[i - 1]] == [
        "container.create", "container.start", "container.kill", "container.die", "container.stop"]
    assert [t for t, _ in _lifecycle(second, runner.name("c"))] == ["container.create"]
    assert second.events(runner.name("a"))[3].payload["planned"] is False  # SIGKILL: not a clean stop
    # The SIGTERM of `docker stop` was seen before the die (exit 137 after the timeout), across the restart.
    assert [e for e in second.events(runner.name("b")) if e.type == "container.die"][0].payload["planned"] is True
    # Replayed events were handed on again only if after the cursor: nothing twice.
    keys = [(k["container_id"], k["time_nano"], k["action"]) for k in first.handled + second.handled]
    assert len(keys) == len(set(keys))
    second.stop()


def test_it_reconnects_with_backoff_after_losing_the_engine_and_covers_the_gap(sqlite_store, docker_engine,
                                                                               containers_config, runner, tmp_path):
    from tests.containers.socket_proxy import DockerSocketProxy

    proxy = DockerSocketProxy(str(tmp_path / "docker.sock")).start()
    h = Harness(sqlite_store, docker_engine, containers_config,
                client_factory=lambda: docker.DockerClient(base_url=proxy.url, timeout=10)).start()
    try:
        runner.run("dbmct/postgres:16", "before", env={"POSTGRES_PASSWORD": "x"})
        h.wait_event(runner.name("before"), "container.start")
        proxy.cut()
        wait_for(lambda: not h.follower.connected.is_set(), 10)
        during = runner.run("dbmct/redis:7", "during")  # happens while the engine is unreachable
        runner.client.api.kill(during)
        import time
        time.sleep(1.0)  # several failed reconnect attempts, none of which may crash the follower
        assert h.thread.is_alive() and h.follower.connects == 1
        proxy.restore()
        assert wait_for(lambda: h.follower.connected.is_set(), 15)
        # The stream resumes from the cursor, so even the kill during the outage is stored.
        h.wait_event(runner.name("during"), "container.die")
        assert [t for t, _ in _lifecycle(h, runner.name("during"))] == [
            "container.create", "container.start", "container.kill", "container.die"]
        assert h.follower.connects == 2 and h.resyncs == 2
    finally:
        h.stop()
        proxy.close()


def test_events_of_a_database_container_removed_before_they_are_handled_are_kept(sqlite_store, docker_engine,
                                                                               containers_config, runner):
    import time

    from monitor_app.containers.discovery import handle_event
    from monitor_app.containers.event_stream import Annotator, to_task_kwargs
    from tests.containers.follow import Harness as _H

    since = time.time()
    cid = runner.run("dbmct/postgres:16", "short", labels={"dbmon.engine": "postgresql"})
    runner.client.api.kill(cid)
    runner.remove(cid)
    # A worker lagging behind: every task runs after the container is gone.
    annotator = Annotator()
    for ev in docker_engine.api.events(since=since, until=time.time() + 0.5, decode=True,
                                       filters={"type": "container", "container": cid}):
        with sqlite_store.session() as s:
            handle_event(s, docker_engine, to_task_kwargs(ev, annotator), containers_config)
    h = _H(sqlite_store, docker_engine, containers_config)
    assert [e.type for e in h.events(runner.name("short"))] == [
        "container.create", "container.start", "container.kill", "container.die", "container.destroy"]
    with sqlite_store.session() as s:
        asset = s.scalar(select(Asset).where(Asset.external_id == runner.name("short")))
        assert asset.status == "gone" and asset.engine == "postgresql"
