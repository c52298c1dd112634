"""The lifecycle with real processes in both modes: a new asset is probed at once (the deployment's
reachability interval is an hour), and a host whose sampler stops is down, then up when it is back
(every worker samples its own host, so the other one stays up)."""

from __future__ import annotations

import signal
import sqlite3
import time

from sqlalchemy import select

from monitor_app.store.models import Asset, Event
from tests.harness import wait_for

# The harness sets DBMON_REACHABILITY_INTERVAL to an hour: only the first look can beat this.
FIRST_LOOK_WITHIN = 5.0


def _events(deployment, name: str) -> list[Event]:
    with deployment.runtime.store.session() as s:
        asset_id = s.scalar(select(Asset.id).where(Asset.name == name))
        if asset_id is None:
            return []
        return list(s.scalars(select(Event).where(Event.asset_id == asset_id, Event.type.startswith("asset."))
                              .order_by(Event.id)))


def _types(deployment, name: str) -> list[str]:
    return [e.type for e in _events(deployment, name)]


def _sqlite_file(path) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.commit()
    conn.close()
    return str(path)


def test_assets_are_probed_at_once_on_start_up_and_on_registration(deployment, tmp_path):
    early = _sqlite_file(tmp_path / "early.db")
    deployment.write_config(f"assets:\n  - name: early\n    engine: sqlite\n    path: {early}\n")
    deployment.start_worker()
    started = time.monotonic()
    deployment.start("watcher", "watcher")  # its config source syncs the file it finds on start
    wait_for(lambda: "asset.up" in _types(deployment, "early"), 30, what="first look at start-up")
    at_start_up = time.monotonic() - started

    late = _sqlite_file(tmp_path / "late.db")
    written = time.monotonic()
    deployment.write_config(f"assets:\n  - name: early\n    engine: sqlite\n    path: {early}\n"
                            f"  - name: late\n    engine: sqlite\n    path: {late}\n")
    wait_for(lambda: "asset.up" in _types(deployment, "late"), FIRST_LOOK_WITHIN, what="first look of a new asset")
    on_registration = time.monotonic() - written
    registered, up = _events(deployment, "late")
    assert (registered.type, up.type) == ("asset.registered", "asset.up")
    assert (up.detected_at - registered.detected_at).total_seconds() < FIRST_LOOK_WITHIN
    print(f"first look [{deployment.mode}]: start-up {at_start_up:.2f} s (watcher start included), "
          f"new asset {on_registration:.2f} s after the file was written")


def test_a_host_whose_sampler_stops_is_down_and_up_when_it_reports_again(deployment):
    # Two "machines": every worker samples the host it runs on, named here by DBMON_HOST_NAME.
    deployment.env.update({"DBMON_HOST_SAMPLE_INTERVAL": "1", "DBMON_HOST_SAMPLER_MISSED_INTERVALS": "2",
                           "DBMON_HOST_NAME": "keeper-host"})
    deployment.start_worker("keeper", "-Q", "maintenance")
    deployment.env["DBMON_HOST_NAME"] = "db-host-1"
    deployment.start_worker("sampler", "-Q", "metrics")
    deployment.start("beat", "beat")

    def host_types(name: str = "db-host-1"):
        with deployment.runtime.store.session() as s:
            host = s.scalar(select(Asset).where(Asset.source == "host", Asset.name == name))
            if host is None:
                return []
            return [e.type for e in s.scalars(select(Event).where(Event.asset_id == host.id).order_by(Event.id))]

    wait_for(lambda: host_types()[:2] == ["asset.registered", "asset.up"], 30, what="host sampled")
    deployment.kill("sampler", signal.SIGKILL)
    stopped = time.monotonic()
    wait_for(lambda: "asset.down" in host_types(), 15, what="silent sampler noticed")
    noticed = time.monotonic() - stopped
    assert noticed >= 1.0  # not before the sampler actually missed its intervals
    deployment.start_worker("sampler", "-Q", "metrics")
    wait_for(lambda: host_types()[-1] == "asset.up", 30, what="sampler back")
    assert host_types() == ["asset.registered", "asset.up", "asset.down", "asset.up"]
    assert host_types("keeper-host") == ["asset.registered", "asset.up"]  # the other machine sampled itself throughout
    print(f"silent sampler [{deployment.mode}]: down {noticed:.2f} s after the sampler worker was killed "
          "(interval 1 s, 2 missed)")
