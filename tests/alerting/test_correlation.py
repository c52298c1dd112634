"""Incidents group alerts; follow-ups are batched; inhibition and flap detection hold noise back."""

from __future__ import annotations

from sqlalchemy import func, select

from monitor_app.store.models.alerting import Alert, Incident, Notification
from tests.alerting.helpers import add_asset, add_event, drain


def config(url: str, **extra) -> dict:
    return {
        "rules": [
            {"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "resolve_on": ["asset.up"],
             "severity": "critical"},
            {"name": "SchemaChange", "kind": "event", "event_types": ["schema.changed"],
             "label_from_payload": ["object"], "resolve_on": ["schema.reverted"]},
        ],
        "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": url}},
        "route": {"channels": ["ops"], "group_by": ["asset"], "group_interval": "5s"},
        **extra,
    }


def count(store, model, *where) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_it_pages_once_then_batches_alerts_joining_the_incident(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url()))
    db = add_asset(store, "orders")
    first = engine.evaluate_events([add_event(store, "schema.changed", db, clock(), payload={"object": "t0"})])
    drain(engine, first.deliver)
    deliver_now = []
    for i in range(1, 100):
        clock.advance(0.01)
        deliver_now += engine.evaluate_events(
            [add_event(store, "schema.changed", db, clock(), payload={"object": f"t{i}"})]).deliver
    assert deliver_now == []  # the follow-up waits for the batch window
    assert count(store, Incident) == 1
    assert count(store, Notification) == 2
    clock.advance(5)
    drain(engine, engine.sweep().deliver)
    page, followup = webhook_peer.wait_for(2)
    assert len(page.json()["alerts"]) == 1
    assert len(followup.json()["alerts"]) == 100 and len(followup.json()["dbmon"]["newAlerts"]) == 99
    assert followup.json()["dbmon"]["kind"] == "followup"


def test_it_opens_separate_incidents_per_group(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url()))
    a, b = add_asset(store, "a"), add_asset(store, "b")
    outcome = engine.evaluate_events([add_event(store, "asset.down", a, clock()), add_event(store, "asset.down", b, clock())])
    assert len(outcome.deliver) == 2 and count(store, Incident) == 2


def test_it_mutes_an_assets_other_alerts_while_the_asset_is_down(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url(), inhibit_rules=[
        {"source_matchers": ["alertname=AssetDown"], "target_matchers": ["alertname!=AssetDown"], "equal": ["asset"]}],
        route={"channels": ["ops"], "group_by": ["asset", "alertname"]}))
    db, other = add_asset(store, "orders"), add_asset(store, "billing")
    # Schema alert already firing, then the asset goes down in a batch that also holds a new schema event.
    drain(engine, engine.evaluate_events([add_event(store, "schema.changed", db, clock(), payload={"object": "t1"})]).deliver)
    clock.advance(1)
    outcome = engine.evaluate_events([add_event(store, "schema.changed", db, clock(), payload={"object": "t2"}),
                                      add_event(store, "asset.down", db, clock()),
                                      add_event(store, "schema.changed", other, clock(), payload={"object": "t1"})])
    with store.session() as s:
        by_key = {(a.labels["asset"], a.labels.get("object")): a for a in s.scalars(select(Alert))}
    assert by_key[("orders", "t1")].inhibited and by_key[("orders", "t2")].inhibited
    assert not by_key[("billing", "t1")].inhibited and not by_key[("orders", None)].inhibited
    assert len(outcome.deliver) == 2  # the down page and billing's schema alert; nothing for orders' t2
    # Asset back up: the held schema alert now notifies.
    clock.advance(60)
    outcome = engine.evaluate_events([add_event(store, "asset.up", db, clock())])
    with store.session() as s:
        t2 = s.scalars(select(Alert).where(Alert.id == by_key[("orders", "t2")].id)).one()
        assert not t2.inhibited and t2.incident_id is not None


def test_it_holds_a_flapping_alert_instead_of_notifying_each_toggle(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url(), flap={"window": "10m", "transitions": 4, "hold": "5m"}))
    db = add_asset(store, "orders")
    sent = []
    for _ in range(6):
        clock.advance(10)
        sent += drain(engine, engine.evaluate_events([add_event(store, "asset.down", db, clock())]).deliver)
        clock.advance(10)
        sent += drain(engine, engine.evaluate_events([add_event(store, "asset.up", db, clock())]).deliver)
    # Down, up, down: the 4th transition (up) marks it flapping; the first incident is held open.
    assert [r["outcome"] for r in sent] == ["sent", "sent", "sent"]
    with store.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.flapping and alert.state == "resolved"
    clock.advance(299)
    drain(engine, engine.sweep().deliver)
    assert len(webhook_peer.wait_for(3, timeout=1)) == 3
    clock.advance(2)
    drain(engine, engine.sweep().deliver)
    with store.session() as s:
        assert not s.scalars(select(Alert)).one().flapping
        assert s.scalar(select(func.count()).select_from(Incident).where(Incident.status == "resolved")) == 2
    assert webhook_peer.wait_for(4)[-1].json()["status"] == "resolved"
