"""The outbox loses nothing and sends nothing twice: channel down, failing, stalling,
a worker SIGKILLed mid-send, and a rate limit that summarises instead of dropping."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor_app.alerting import outbox
from monitor_app.store.base import utcnow
from monitor_app.store.models.alerting import Notification, NotificationAttempt
from tests.alerting.helpers import add_asset, add_event, drain


def config(url: str, **channel) -> dict:
    return {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]}],
            "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": url, "timeout": 0.5, **channel}},
            "route": {"channels": ["ops"]}, "outbox": {"backoff_base": "2s", "backoff_max": "60s"}}


def fire(store, clock, engine, name="orders") -> list[int]:
    return engine.evaluate_events([add_event(store, "asset.down", add_asset(store, name), clock())]).deliver


def row(store, nid) -> Notification:
    with store.session() as s:
        return s.get(Notification, nid)


def test_it_retries_with_growing_backoff_while_the_channel_is_down(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url()))
    webhook_peer.stop()
    [nid] = fire(store, clock, engine)
    delays = []
    for _ in range(4):
        assert engine.deliver(nid)["outcome"] == "retry"
        delays.append((row(store, nid).next_attempt_at - clock()).total_seconds())
        assert engine.deliver(nid)["outcome"] == "skipped"  # not due yet
        clock.now = row(store, nid).next_attempt_at
    assert all(1.5 <= d / 2 ** i <= 2.5 for i, d in enumerate(delays)), delays
    webhook_peer.start()
    assert engine.sweep().deliver == [nid]
    assert engine.deliver(nid)["outcome"] == "sent"
    assert len(webhook_peer.wait_for(1)) == 1
    with store.session() as s:
        log = [a.outcome for a in s.scalars(select(NotificationAttempt).order_by(NotificationAttempt.id))]
    assert log == ["retry"] * 4 + ["sent"]


def test_it_honours_retry_after_and_gives_up_on_a_permanent_rejection(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url()))
    webhook_peer.mode, webhook_peer.fail_status, webhook_peer.retry_after = "fail", 429, "30"
    [nid] = fire(store, clock, engine)
    assert engine.deliver(nid)["outcome"] == "retry"
    assert (row(store, nid).next_attempt_at - clock()).total_seconds() == 30
    webhook_peer.fail_status, webhook_peer.retry_after = 400, None
    clock.advance(30)
    result = engine.deliver(nid)
    assert result["outcome"] == "failed" and "HTTP 400" in result["error"]
    assert row(store, nid).status == "failed"
    clock.advance(3600)
    assert nid not in engine.sweep().deliver


def test_it_treats_a_stalled_receiver_as_down(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url()))
    webhook_peer.mode, webhook_peer.stall_seconds = "stall", 1.5
    [nid] = fire(store, clock, engine)
    result = engine.deliver(nid)
    assert result["outcome"] == "retry" and "timed out" in result["error"]


def test_it_lets_only_one_worker_claim_a_row(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url()))
    [nid] = fire(store, clock, engine)
    with store.session() as s:
        assert outbox.claim(s, nid, clock(), 60) is not None
    with store.session() as s:
        assert outbox.claim(s, nid, clock(), 60) is None
    assert engine.deliver(nid)["outcome"] == "skipped"


def test_it_refuses_a_second_row_with_the_same_idempotency_key(store, clock):
    with store.session() as s:
        assert outbox.enqueue(s, key="k", channel="ops", kind="test", incident_id=None, due_at=clock(), now=clock())
        assert outbox.enqueue(s, key="k", channel="ops", kind="test", incident_id=None, due_at=clock(), now=clock()) is None


KILLED_WORKER = textwrap.dedent("""
    import sys
    from monitor_app.alerting.config import load_alerting_config
    from monitor_app.alerting.operations import AlertOperations
    from monitor_app.store import Store
    import json
    engine = AlertOperations(Store(sys.argv[1]), load_alerting_config(json.loads(sys.argv[2])), "k")
    print("claiming", flush=True)
    engine.deliver(int(sys.argv[3]))
""")


@pytest.mark.slow
def test_it_resends_a_row_whose_worker_was_killed_mid_send(store, make_engine, webhook_peer):
    cfg = config(webhook_peer.url(), timeout=30)
    cfg["outbox"]["lease"] = "5s"
    later = {"offset": 0.0}
    from monitor_app.alerting.config import load_alerting_config
    from monitor_app.alerting.operations import AlertOperations

    engine = AlertOperations(store, load_alerting_config(cfg), "k",
                            clock=lambda: utcnow() + timedelta(seconds=later["offset"]))
    [nid] = engine.evaluate_events([add_event(store, "asset.down", add_asset(store, "orders"), utcnow())]).deliver
    webhook_peer.mode, webhook_peer.stall_seconds = "stall", 3
    import json

    worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, store.url, json.dumps(cfg), str(nid)],
                              stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline().strip() == "claiming"
    deadline = time.monotonic() + 10
    while row(store, nid).status != "sending" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the request is in flight now
    worker.kill()
    worker.wait()
    assert row(store, nid).status == "sending"
    assert engine.sweep().deliver == []  # lease still held by the dead worker
    webhook_peer.mode = "ok"
    later["offset"] = 6
    assert engine.sweep().deliver == [nid]
    assert engine.deliver(nid)["outcome"] == "sent"
    received = webhook_peer.wait_for(2, timeout=5)
    # The dead worker's request may still land; the receiver sees one idempotency key either way.
    assert {r.headers["Idempotency-Key"] for r in received} == {row(store, nid).idempotency_key}
    assert row(store, nid).status == "sent"


def test_it_summarises_overflow_beyond_the_rate_limit(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url(), rate_limit={"per_minute": 6, "burst": 2}))
    results = []
    for i in range(5):
        results += drain(engine, fire(store, clock, engine, f"db{i}"))
    assert [r["outcome"] for r in results] == ["sent", "sent", "suppressed", "suppressed", "suppressed"]
    summary = results[2]["summary"]
    assert engine.sweep().deliver == []
    clock.advance(10)  # one token per 10 s
    assert engine.sweep().deliver == [summary]
    delivered = engine.deliver(summary)
    assert delivered["outcome"] == "sent", delivered
    body = webhook_peer.wait_for(3)[-1].json()
    assert body["dbmon"]["kind"] == "summary"
    assert sorted(s["title"] for s in body["dbmon"]["suppressed"]) == ["AssetDown on db2", "AssetDown on db3",
                                                                       "AssetDown on db4"]
    with store.session() as s:
        assert {n.summary_id for n in s.scalars(select(Notification).where(Notification.status == "suppressed"))} == {summary}
