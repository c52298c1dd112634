"""Silences from the config file and the API: mirrored once, muting only between start
and end, and releasing still-firing alerts when they end."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from monitor_app.store.models.alerting import Alert, Incident, Silence
from tests.alerting.helpers import add_asset, add_event, drain


def config(url: str, **extra) -> dict:
    return {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]}],
            "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": url}}, "route": {"channels": ["ops"]}, **extra}


def test_it_mirrors_config_silences_once_and_mutes_matching_alerts(store, clock, make_engine, webhook_peer):
    ends = (clock() + timedelta(hours=1)).isoformat()
    engine = make_engine(config(webhook_peer.url(), silences=[
        {"matchers": ["env=staging"], "ends_at": ends, "comment": "rebuild", "created_by": "ops-team"}]))
    engine.sweep()
    engine.sweep()
    with store.session() as s:
        [row] = s.scalars(select(Silence)).all()
        assert (row.source, row.created_by, row.matchers) == ("config", "ops-team", ['env="staging"'])
    staging, prod = add_asset(store, "s1", {"env": "staging"}), add_asset(store, "p1", {"env": "prod"})
    outcome = engine.evaluate_events([add_event(store, "asset.down", staging, clock()),
                                      add_event(store, "asset.down", prod, clock())])
    assert len(outcome.deliver) == 1
    with store.session() as s:
        muted = {a.labels["asset"]: a.silenced for a in s.scalars(select(Alert))}
    assert muted == {"s1": True, "p1": False}


def test_it_mutes_only_from_start_and_releases_at_the_end(store, clock, make_engine, webhook_peer):
    engine = make_engine(config(webhook_peer.url()))
    engine.add_silence(matchers=["asset=orders"], starts_at=clock() + timedelta(minutes=10),
                       ends_at=clock() + timedelta(minutes=20), created_by="bob")
    db = add_asset(store, "orders")
    clock.advance(11 * 60)
    # Fires inside the window: muted, no incident.
    assert engine.evaluate_events([add_event(store, "asset.down", db, clock())]).deliver == []
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0
    clock.advance(10 * 60)  # the silence has ended and the alert still fires
    drain(engine, engine.sweep().deliver)
    body = webhook_peer.wait_for(1)[0].json()
    assert body["status"] == "firing" and body["commonLabels"]["asset"] == "orders"
