"""A container's exit as its asset's lifecycle, on the real engine and store: a stop that was asked
for is `asset.stopped` and never an outage; a crash, a SIGKILL and an OOM kill are `asset.down`."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings
from monitor_app.store.models import Asset
from tests.containers.conftest import wait_for
from tests.containers.follow import Harness
from tests.services import free_port
from workers.tasks.containers import probe_container_asset

pytestmark = pytest.mark.docker


@pytest.fixture()
def harness(sqlite_store, docker_engine, containers_config):
    h = Harness(sqlite_store, docker_engine, containers_config).start()
    yield h
    h.stop()


@pytest.fixture()
def rt(tmp_path, sqlite_store):
    """The probe task's body in-process, on the harness's store; what it dispatches is only kept."""
    runtime = Runtime(load_settings(_env_file=None, data_dir=tmp_path, database_url=sqlite_store.url,
                                    secret_key="k", config_file=tmp_path / "none.yaml"),
                      sender=lambda name, kwargs, run_id, queue: None)
    runtime.__dict__["store"] = sqlite_store
    return runtime


def _asset(harness, name) -> Asset:
    with harness.store.session() as s:
        return s.scalar(select(Asset).where(Asset.external_id == name))


def _asset_events(harness, name, type_=None):
    return [e for e in harness.events(name, type_prefix="asset.") if type_ is None or e.type == type_]


def _wait_asset_event(harness, name, type_, timeout=20):
    return wait_for(lambda: _asset_events(harness, name, type_), timeout)


def _serving(runner, base, port, *, clean_exit: bool):
    """A host-network "redis" serving a real TCP port; with `clean_exit` it leaves on SIGTERM with 0,
    else (PID 1 without a handler ignores SIGTERM) only `docker stop`'s SIGKILL ends it."""
    serve = ["/bin/httpd", "-f", "-p", f"127.0.0.1:{port}"]
    command = ["/bin/sh", "-c", f"trap 'exit 0' TERM; {' '.join(serve)} & wait"] if clean_exit else serve
    return runner.run("dbmct/redis:7", base, network="host", labels={"dbmon.port": str(port)}, command=command)


def _probe_until(rt, asset_id, status, timeout=15):
    return wait_for(lambda: probe_container_asset.domain_fn(rt, asset_id=asset_id)["status"] == status, timeout,
                    interval=0.3)


def test_a_docker_stop_is_stopped_not_down_and_its_failing_probes_stay_quiet(harness, rt, runner):
    port = free_port()
    cid = _serving(runner, "stopped", port, clean_exit=True)
    name = runner.name("stopped")
    _wait_asset_event(harness, name, "asset.registered")
    asset_id = _asset(harness, name).id
    _probe_until(rt, asset_id, "up")

    runner.client.api.stop(cid, timeout=10)
    [stopped] = _wait_asset_event(harness, name, "asset.stopped")
    assert stopped.severity == "info" and stopped.payload == {
        **stopped.payload, "source": "docker", "previous": "up", "planned": True, "exit_code": 0}
    # The port refuses now: the probe sees it and says so per port, but the asset stays stopped.
    summary = probe_container_asset.domain_fn(rt, asset_id=asset_id)
    assert summary["ports"][f"127.0.0.1:{port}"]["up"] is False and summary["status"] == "stopped"
    assert not _asset_events(harness, name, "asset.down")

    runner.client.api.start(cid)
    _probe_until(rt, asset_id, "up")
    assert [e.type for e in _asset_events(harness, name)] == [
        "asset.registered", "asset.up", "asset.stopped", "asset.up"]


def test_a_docker_stop_that_times_out_into_sigkill_is_still_planned(harness, runner):
    cid = _serving(runner, "stubborn", free_port(), clean_exit=False)
    name = runner.name("stubborn")
    harness.wait_event(name, "container.start")
    runner.client.api.stop(cid, timeout=1)
    [stopped] = _wait_asset_event(harness, name, "asset.stopped")
    assert stopped.payload["exit_code"] == 137 and stopped.payload["planned"] is True
    assert not _asset_events(harness, name, "asset.down")


def test_a_sigkill_is_down(harness, runner):
    cid = runner.run("dbmct/postgres:16", "killed", env={"POSTGRES_PASSWORD": "x"})
    name = runner.name("killed")
    harness.wait_event(name, "container.start")
    runner.client.api.kill(cid, signal="KILL")
    [down] = _wait_asset_event(harness, name, "asset.down")
    assert down.severity == "critical" and down.payload == {
        **down.payload, "source": "docker", "planned": False, "exit_code": 137, "oom_killed": False}
    assert not _asset_events(harness, name, "asset.stopped")
    assert _asset(harness, name).status == "down"


def test_a_process_exiting_1_is_down_and_up_again_when_started(harness, runner):
    cid = runner.run("dbmct/postgres:16", "crashy", env={"POSTGRES_PASSWORD": "x"},
                     command=["/bin/sh", "-c", "sleep 1; exit 1"])
    name = runner.name("crashy")
    [down] = _wait_asset_event(harness, name, "asset.down")
    assert down.payload["exit_code"] == 1 and "unplanned" in down.summary
    runner.client.api.start(cid)
    # No port to probe (network none): running again is up, and the next crash is down again.
    wait_for(lambda: [e.type for e in _asset_events(harness, name)][-2:] == ["asset.up", "asset.down"], 20)
    assert [e.type for e in _asset_events(harness, name)] == ["asset.registered", "asset.down", "asset.up",
                                                              "asset.down"]


def test_an_out_of_memory_kill_is_down(harness, runner):
    runner.run("dbmct/redis:7", "oom", command=["/bin/sh", "-c", "sleep 0.5; tail /dev/zero"],
               mem_limit="16m", memswap_limit="16m")
    name = runner.name("oom")
    [down] = _wait_asset_event(harness, name, "asset.down", timeout=30)
    assert down.severity == "critical" and down.payload["oom_killed"] is True and down.payload["exit_code"] == 137
    assert "out of memory" in down.summary
