"""End to end with real Celery workers and beat, in embedded mode (filesystem broker,
SQLite) and distributed mode (a private Redis, PostgreSQL): an event committed anywhere
reaches the webhook within a second; a channel outage, a worker SIGKILL and a broker
restart lose nothing."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.alerting.peers import HttpReceiver
from tests.harness import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def alerting(url: str) -> dict:
    return {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]}],
            "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": url, "timeout": 2}},
            "route": {"channels": ["ops"]}, "outbox": {"backoff_base": "1s", "backoff_max": "2s", "lease": "5s"}}


@pytest.fixture()
def alerting_deployment(deployment):
    """The shared deployment fixture (both modes), configured for alerting with a live receiver."""
    peer = HttpReceiver()
    deployment.env["DBMON_ALERT_SWEEP_INTERVAL"] = "1"
    deployment.write_config(yaml.safe_dump({"alerting": alerting(peer.url())}))
    deployment.peer = peer
    yield deployment
    peer.stop()


def record_down(rt, name: str) -> int:
    from monitor_app.platform.event_log import record_event
    from monitor_app.store.models.core import Asset

    with rt.store.session() as s:
        asset = Asset(kind="database", name=name, source="config", external_id=name, labels={}, connection={},
                      details={})
        s.add(asset)
        s.flush()
        return record_event(s, type="asset.down", severity="critical", asset_id=asset.id, summary=f"{name} down").id


def notifications(rt) -> set[str]:
    from sqlalchemy import select

    from monitor_app.store.models.alerting import Notification

    with rt.store.session() as s:
        return {n.status for n in s.scalars(select(Notification))}


def test_it_delivers_a_committed_event_without_waiting_for_a_sweep(alerting_deployment):
    """No beat runs here, so nothing sweeps the outbox: each page must be pushed by the commit
    itself. How fast that is lives in bench/alerting_latency.py, not in a timed test."""
    dep, peer = alerting_deployment, alerting_deployment.peer
    dep.start_worker()
    assert "beat" not in dep.procs
    for i in range(3):
        record_down(dep.runtime, f"db{i}")
        got = peer.wait_for(i + 1, timeout=15)
        assert len(got) == i + 1, dep.log("worker")[-2000:]
        assert got[-1].json()["commonLabels"]["asset"] == f"db{i}"


def test_it_loses_nothing_across_a_channel_outage_and_a_worker_kill(alerting_deployment):
    dep, peer = alerting_deployment, alerting_deployment.peer
    dep.start_worker("w1")
    dep.start("beat", "beat")
    peer.stop()
    for i in range(5):
        record_down(dep.runtime, f"outage{i}")
    time.sleep(3)  # several failed attempts, backing off
    peer.start()
    got = peer.wait_for(5, timeout=30)
    assert sorted(r.json()["commonLabels"]["asset"] for r in got) == [f"outage{i}" for i in range(5)]
    # Now a worker dies mid-send: the receiver stalls, the worker is SIGKILLed, another takes over.
    peer.requests.clear()
    peer.mode, peer.stall_seconds = "stall", 4
    record_down(dep.runtime, "killed")
    time.sleep(1.5)
    dep.kill("w1")
    peer.mode = "ok"
    dep.start_worker("w2")
    wait_for(lambda: notifications(dep.runtime) == {"sent"}, 60, what="the killed worker's row to be sent")
    got = peer.wait_for(1, timeout=5)
    # The dead worker's request may have landed too; the receiver sees one idempotency key.
    assert {r.headers["Idempotency-Key"] for r in peer.requests} == {got[0].headers["Idempotency-Key"]}
    assert got[0].json()["commonLabels"]["asset"] == "killed"


@pytest.mark.parametrize("deployment", ["distributed"], indirect=True)
def test_it_delivers_what_a_restarted_broker_forgot(alerting_deployment):
    """Redis without persistence forgets its queues on restart; the embedded broker keeps files."""
    dep, peer = alerting_deployment, alerting_deployment.peer
    for i in range(3):
        record_down(dep.runtime, f"forgotten{i}")  # queued in Redis; no worker runs yet
    dep.redis.stop()
    dep.redis.start()
    time.sleep(6)  # past the catch-up grace: the events are only in the store now
    dep.start_worker()
    dep.start("beat", "beat")
    got = peer.wait_for(3, timeout=60)
    assert sorted(r.json()["commonLabels"]["asset"] for r in got) == ["forgotten0", "forgotten1", "forgotten2"]
    time.sleep(2)
    assert len(peer.requests) == 3
