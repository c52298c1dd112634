"""Escalation with shortened timings: steps fire when due, stop on acknowledge, resolve or
silence, and a stale or duplicate step task does nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor_app.alerting import ack_links
from monitor_app.errors import DbmonError
from monitor_app.store.models.alerting import EscalationState, Incident, Notification
from tests.alerting.helpers import add_asset, add_event, drain


def config(ops_url: str, pager_url: str) -> dict:
    return {
        "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "resolve_on": ["asset.up"],
                   "severity": "page"}],
        "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": ops_url}, "pager": {"type": "webhook", "allow_private_targets": True, "url": pager_url}},
        "route": {"channels": ["ops"]},
        "escalation_policies": {"oncall": {"severities": ["page"], "repeat": 1, "steps": [
            {"after": "2s", "channels": ["pager"]}, {"after": "3s", "channels": ["ops", "pager"]}]}},
    }


@pytest.fixture()
def pager_peer():
    from tests.alerting.peers import HttpReceiver

    peer = HttpReceiver()
    yield peer
    peer.stop()


def fire(store, clock, engine) -> int:
    outcome = engine.evaluate_events([add_event(store, "asset.down", add_asset(store, "orders"), clock())])
    drain(engine, outcome.deliver)
    with store.session() as s:
        return s.scalar(select(Incident.id))


def run_due(engine) -> list[str]:
    results = []
    for incident_id, token in engine.sweep().escalate:
        step = engine.escalate(incident_id, token)
        drain(engine, step["deliver"])
        results.append(step["outcome"])
    return results


def test_it_walks_the_policy_steps_and_repeats_then_stops(store, clock, make_engine, webhook_peer, pager_peer):
    engine = make_engine(config(webhook_peer.url(), pager_peer.url()))
    fire(store, clock, engine)
    assert run_due(engine) == []  # step 0 is due after 2 s
    clock.advance(2)
    assert run_due(engine) == ["notified"]
    assert len(pager_peer.wait_for(1)) == 1
    clock.advance(3)
    assert run_due(engine) == ["notified"]
    clock.advance(2)
    assert run_due(engine) == ["notified"]  # second cycle (repeat: 1)
    clock.advance(3)
    assert run_due(engine) == ["done"]
    clock.advance(100)
    assert run_due(engine) == []
    assert len(pager_peer.wait_for(4)) == 4 and len(webhook_peer.wait_for(3)) == 3
    escalations = [r.json()["dbmon"]["escalation"] for r in pager_peer.requests]
    assert [(e["cycle"], e["step"]) for e in escalations] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_it_ignores_a_duplicate_or_stale_step_task(store, clock, make_engine, webhook_peer, pager_peer):
    engine = make_engine(config(webhook_peer.url(), pager_peer.url()))
    incident = fire(store, clock, engine)
    clock.advance(2)
    [(incident_id, token)] = engine.sweep().escalate
    first = engine.escalate(incident_id, token)
    again = engine.escalate(incident_id, token)
    assert first["outcome"] == "notified" and again == {"outcome": "stale", "deliver": []}
    assert engine.escalate(incident, "not-the-token")["outcome"] == "stale"
    with store.session() as s:
        assert s.scalar(select(EscalationState.step)) == 1


def test_it_stops_escalating_when_acknowledged(store, clock, make_engine, webhook_peer, pager_peer):
    engine = make_engine(config(webhook_peer.url(), pager_peer.url()))
    incident = fire(store, clock, engine)
    clock.advance(1)
    with store.session() as s:
        token = s.scalar(select(EscalationState.token))
    assert engine.acknowledge(incident, "alice")["status"] == "acknowledged"
    clock.advance(10)
    assert engine.sweep().escalate == []
    assert engine.escalate(incident, token)["outcome"] == "stale"  # a task queued before the ack
    with store.session() as s:
        state = s.scalars(select(EscalationState)).one()
        assert (state.status, state.stopped_reason) == ("stopped", "acknowledged")
    assert pager_peer.wait_for(1, timeout=0.3) == []


def test_it_acknowledges_through_a_signed_link_only(store, clock, make_engine, webhook_peer, pager_peer):
    engine = make_engine(config(webhook_peer.url(), pager_peer.url()))
    incident = fire(store, clock, engine)
    link = webhook_peer.wait_for(1)[0].json()["dbmon"]["ackURL"]
    token = link.rsplit("/", 1)[1]
    assert ack_links.verify("test-secret-key", token, max_age=60) == incident
    with pytest.raises(DbmonError, match="not valid"):
        ack_links.verify("another-key", token, max_age=60)
    with pytest.raises(DbmonError, match="not valid"):
        ack_links.verify("test-secret-key", token[:-2] + "xx", max_age=60)


def test_it_stops_escalating_when_resolved_or_silenced(store, clock, make_engine, webhook_peer, pager_peer):
    engine = make_engine(config(webhook_peer.url(), pager_peer.url()))
    fire(store, clock, engine)
    engine.add_silence(matchers=["asset=orders"], ends_at=clock() + timedelta(hours=1), created_by="bob",
                       comment="maintenance")
    with store.session() as s:
        assert s.scalars(select(EscalationState)).one().stopped_reason == "silenced"
    # A second incident resolved by an operator stops too and says so on the channel.
    outcome = engine.evaluate_events([add_event(store, "asset.down", add_asset(store, "billing"), clock())])
    drain(engine, outcome.deliver)
    with store.session() as s:
        billing = s.scalar(select(Incident.id).where(Incident.title.contains("billing")))
    drain(engine, engine.resolve(billing, "carol").deliver)
    with store.session() as s:
        states = {st.incident_id: st.stopped_reason for st in s.scalars(select(EscalationState))}
        assert states[billing] == "resolved"
        assert s.get(Incident, billing).resolved_by == "carol"
        kinds = [n.kind for n in s.scalars(select(Notification).where(Notification.incident_id == billing))]
    assert sorted(kinds) == ["firing", "resolved"]
    clock.advance(60)
    assert engine.sweep().escalate == []


def test_it_hands_a_due_step_out_once_unless_its_task_was_lost(store, clock, make_engine, webhook_peer, pager_peer):
    engine = make_engine(config(webhook_peer.url(), pager_peer.url()))
    fire(store, clock, engine)
    clock.advance(2)
    first = engine.sweep().escalate
    assert len(first) == 1
    clock.advance(2)
    assert engine.sweep().escalate == []  # its task is still queued
    clock.advance(30)
    assert engine.sweep().escalate == first  # presumed lost: handed out again, same token
    assert engine.escalate(*first[0])["outcome"] == "notified"
