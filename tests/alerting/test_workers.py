"""End to end with real Celery workers and beat, in embedded mode (filesystem broker,
SQLite) and distributed mode (a private Redis, PostgreSQL): an event committed anywhere
reaches the webhook within a second; a channel outage and a worker SIGKILL lose nothing."""

from __future__ import annotations

import shutil
import time

import pytest

from monitor_app.store.migrate import upgrade
from tests.alerting.peers import HttpReceiver
from tests.alerting.processes import Deployment, PrivateRedis
from tests.services import create_pg_database, drop_pg_database, missing

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def alerting(url: str) -> dict:
    return {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]}],
            "channels": {"ops": {"type": "webhook", "url": url, "timeout": 2}},
            "route": {"channels": ["ops"]}, "outbox": {"backoff_base": "1s", "backoff_max": "2s", "lease": "5s"}}


@pytest.fixture(params=["embedded", "distributed"])
def deployment(request, tmp_path, monkeypatch):
    peer = HttpReceiver()
    cleanup = []
    if request.param == "embedded":
        url, broker = f"sqlite:///{tmp_path / 'dbmon.sqlite3'}", None
    else:
        if not shutil.which("redis-server"):
            missing("redis-server binary")
        redis = PrivateRedis()
        cleanup.append(redis.stop)
        request.node.redis = redis
        name, pg_url = create_pg_database("dbmon_e2e")
        cleanup.append(lambda: drop_pg_database(name))
        url, broker = pg_url.replace("postgresql://", "postgresql+psycopg2://", 1), redis.url
    upgrade(url)
    dep = Deployment(tmp_path, url, alerting(peer.url()), broker, alert_sweep_interval=1, task_queued_grace=5)
    for key, value in dep.env.items():
        if key.startswith("DBMON_"):
            monkeypatch.setenv(key, value)
    from monitor_app.settings import get_settings

    get_settings.cache_clear()
    dep.peer = peer
    dep.redis = getattr(request.node, "redis", None)
    yield dep
    dep.stop_all()
    peer.stop()
    for fn in reversed(cleanup):
        fn()
    get_settings.cache_clear()


def runtime_for(dep):
    """A Runtime publishing to this deployment's broker through its own Celery app."""
    from monitor_app.runtime import Runtime
    from workers.celery_app import make_celery

    app = make_celery(dep.settings())

    def send(name, kwargs, run_id, queue):
        app.send_task(name, kwargs=kwargs, task_id=run_id, queue=queue, routing_key=queue)

    return Runtime(dep.settings(), sender=send)


def record_down(rt, name: str) -> int:
    from monitor_app.events import record_event
    from monitor_app.store.models.core import Asset

    with rt.store.session() as s:
        asset = Asset(kind="database", name=name, source="config", external_id=name, labels={}, connection={},
                      details={})
        s.add(asset)
        s.flush()
        event = record_event(s, type="asset.down", severity="critical", asset_id=asset.id, summary=f"{name} down")
        return event.id


def wait_worker_ready(dep, rt, peer) -> None:
    """Workers take a few seconds to boot; a test send tells us when one consumes."""
    from monitor_app.alerting.service import dispatch_deliveries, engine_for

    dispatch_deliveries(rt, [engine_for(rt).test_send("ops")])
    assert peer.wait_for(1, timeout=60), (dep.data_dir / "worker.log").read_text()[-2000:]
    peer.requests.clear()


def test_it_delivers_a_committed_event_within_a_second(deployment):
    dep, peer = deployment, deployment.peer
    dep.start_worker()
    rt = runtime_for(dep)
    wait_worker_ready(dep, rt, peer)
    latencies = []
    for i in range(3):
        started = time.monotonic()
        record_down(rt, f"db{i}")
        got = peer.wait_for(i + 1, timeout=10)
        assert len(got) == i + 1
        latencies.append(got[-1].at - started)
    assert max(latencies) < 1.0, latencies
    rt.close()


def test_it_loses_nothing_across_a_channel_outage_and_a_worker_kill(deployment):
    dep, peer = deployment, deployment.peer
    dep.start_worker("w1")
    dep.start_beat()
    rt = runtime_for(dep)
    wait_worker_ready(dep, rt, peer)
    peer.stop()
    for i in range(5):
        record_down(rt, f"outage{i}")
    time.sleep(3)  # several failed attempts, backing off
    peer.start()
    got = peer.wait_for(5, timeout=30)
    assert sorted(r.json()["commonLabels"]["asset"] for r in got) == [f"outage{i}" for i in range(5)]
    # Now a worker dies mid-send: the receiver stalls, the worker is SIGKILLed, another takes over.
    peer.requests.clear()
    peer.mode, peer.stall_seconds = "stall", 4
    record_down(rt, "killed")
    time.sleep(1.5)
    dep.kill("w1")
    peer.mode = "ok"
    dep.start_worker("w2")
    from sqlalchemy import select

    from monitor_app.store.models.alerting import Notification

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with rt.store.session() as s:
            if {n.status for n in s.scalars(select(Notification))} == {"sent"}:
                break
        time.sleep(0.2)
    else:
        pytest.fail("the killed worker's notification was never marked sent")
    got = peer.wait_for(1, timeout=5)
    # The dead worker's request may have landed too; the receiver sees one idempotency key.
    assert {r.headers["Idempotency-Key"] for r in peer.requests} == {got[0].headers["Idempotency-Key"]}
    assert got[0].json()["commonLabels"]["asset"] == "killed"
    rt.close()


@pytest.mark.parametrize("deployment", ["distributed"], indirect=True)
def test_it_delivers_what_a_restarted_broker_forgot(deployment):
    """Redis without persistence forgets its queues on restart; the embedded broker keeps files."""
    dep, peer = deployment, deployment.peer
    rt = runtime_for(dep)
    for i in range(3):
        record_down(rt, f"forgotten{i}")  # queued in Redis; no worker runs yet
    dep.redis.restart()
    time.sleep(6)  # past the catch-up grace: the events are only in the store now
    dep.start_worker()
    dep.start_beat()
    got = peer.wait_for(3, timeout=60)
    assert sorted(r.json()["commonLabels"]["asset"] for r in got) == ["forgotten0", "forgotten1", "forgotten2"]
    time.sleep(2)
    assert len(peer.requests) == 3
    rt.close()
