"""From a stored event to a signed webhook the receiver accepts, and back to resolved."""

from __future__ import annotations

from monitor_app.alerting.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from monitor_app.store.models.alerting import Alert, Incident, Notification, NotificationAttempt
from tests.alerting.helpers import add_asset, add_event, drain

from sqlalchemy import func, select


def down_config(url: str) -> dict:
    return {
        "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "resolve_on": ["asset.up"],
                   "severity": "critical", "annotations": {"summary": "{{ asset }} is down: {{ event.summary }}"}}],
        "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": url, "secret": "s3cret"}},
        "route": {"channels": ["ops"]},
    }


def test_it_delivers_a_signed_alertmanager_payload_for_a_new_event(store, clock, make_engine, webhook_peer):
    engine = make_engine(down_config(webhook_peer.url()))
    asset = add_asset(store, "orders-db", {"env": "prod"})
    event = add_event(store, "asset.down", asset, clock(), summary="connection refused")

    outcome = engine.evaluate_events([event])
    assert outcome.fired == 1 and len(outcome.deliver) == 1
    assert drain(engine, outcome.deliver)[0]["outcome"] == "sent"

    [got] = webhook_peer.wait_for(1)
    body = got.json()
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "ops"
    assert body["alerts"][0]["labels"]["alertname"] == "AssetDown"
    assert body["alerts"][0]["labels"]["env"] == "prod"
    assert body["alerts"][0]["annotations"]["summary"] == "orders-db is down: connection refused"
    assert body["commonLabels"]["asset"] == "orders-db"
    assert body["dbmon"]["ackURL"].startswith("http://127.0.0.1:8080/api/v1/alerts/ack/")
    assert got.headers["Idempotency-Key"] == body["dbmon"]["idempotencyKey"]
    assert verify("s3cret", got.headers[TIMESTAMP_HEADER], got.body, got.headers[SIGNATURE_HEADER])
    assert not verify("wrong", got.headers[TIMESTAMP_HEADER], got.body, got.headers[SIGNATURE_HEADER])


def test_it_updates_one_alert_for_repeated_firings_and_notifies_once(store, clock, make_engine, webhook_peer):
    engine = make_engine(down_config(webhook_peer.url()))
    asset = add_asset(store, "orders-db")
    deliver = []
    for _ in range(20):
        clock.advance(1)
        deliver += engine.evaluate_events([add_event(store, "asset.down", asset, clock())]).deliver
    drain(engine, deliver)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        assert s.scalar(select(Alert.fire_count)) == 20
        assert s.scalar(select(func.count()).select_from(Notification)) == 1
    assert len(webhook_peer.wait_for(1, timeout=1)) == 1


def test_it_sends_a_resolved_notification_when_the_condition_clears(store, clock, make_engine, webhook_peer):
    engine = make_engine(down_config(webhook_peer.url()))
    asset = add_asset(store, "orders-db")
    drain(engine, engine.evaluate_events([add_event(store, "asset.down", asset, clock())]).deliver)
    clock.advance(60)
    outcome = engine.evaluate_events([add_event(store, "asset.up", asset, clock())])
    assert outcome.resolved == 1
    drain(engine, outcome.deliver)
    first, second = webhook_peer.wait_for(2)
    assert second.json()["status"] == "resolved"
    assert second.json()["alerts"][0]["endsAt"].startswith("2026-11-28T09:01:00")
    with store.session() as s:
        incident = s.scalars(select(Incident)).one()
        assert incident.status == "resolved" and incident.open_key is None
        assert [a.outcome for a in s.scalars(select(NotificationAttempt))] == ["sent", "sent"]


def test_it_ignores_events_no_rule_matches(store, clock, make_engine, webhook_peer):
    engine = make_engine(down_config(webhook_peer.url()))
    asset = add_asset(store, "orders-db")
    outcome = engine.evaluate_events([add_event(store, "container.start", asset, clock())])
    assert outcome.signals == 0 and outcome.deliver == []
