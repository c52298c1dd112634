"""The routing tree: first match wins unless `continue`, settings inherit, and per-route
timing decides when an incident's first and later notifications go out."""

from __future__ import annotations

from sqlalchemy import select

from monitor_app.alerting import routing
from monitor_app.alerting.config import load_alerting_config
from monitor_app.store.models.alerting import Notification
from tests.alerting.helpers import add_asset, add_event

HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/x"}
TREE = {
    "channels": {"ops": HOOK, "dba": HOOK, "pager": HOOK, "audit": HOOK},
    "route": {"channels": ["ops"], "group_interval": "1m", "routes": [
        {"matchers": ["team=dba"], "channels": ["dba"], "continue": True, "routes": [
            {"matchers": ["severity=page"], "channels": ["pager"], "group_wait": "10s", "escalation": "night"}]},
        {"matchers": ["env=~prod|stage"], "channels": ["audit"], "group_by": ["env"]},
    ]},
    "escalation_policies": {"night": {"steps": [{"after": "5m", "channels": ["pager"]}]},
                            "crit": {"severities": ["critical"], "steps": [{"after": "1m", "channels": ["ops"]}]}},
}


def decide(labels: dict) -> routing.RouteDecision:
    return routing.decide(load_alerting_config(TREE), labels)


def test_it_falls_back_to_the_root_route():
    d = decide({"alertname": "X", "severity": "warning"})
    assert (d.path, d.channels, d.group_wait, d.group_interval) == ("root", ["ops"], 0.0, 60.0)
    assert d.escalation is None


def test_it_inherits_settings_and_takes_the_deepest_match():
    d = decide({"team": "dba", "severity": "page", "env": "dev"})
    assert d.path == "root.0.0" and d.channels == ["pager"]
    assert (d.group_wait, d.group_interval, d.escalation) == (10.0, 60.0, "night")


def test_it_continues_past_a_match_and_unions_channels():
    d = decide({"team": "dba", "severity": "warning", "env": "prod"})
    assert d.path == "root.0" and d.channels == ["dba", "audit"]
    assert d.group_by == ["asset", "alertname"]  # grouping comes from the first match


def test_it_picks_an_escalation_policy_by_severity_when_the_route_names_none():
    assert decide({"severity": "critical"}).escalation == "crit"


def test_it_holds_the_first_notification_for_the_routes_group_wait(store, clock, make_engine):
    engine = make_engine({"rules": [{"name": "Down", "kind": "event", "event_types": ["asset.down"],
                                     "severity": "page", "labels": {"team": "dba"}}],
                          "default_rules": {"enabled": False},  # the built-in AssetDown would page at once
                          **{**TREE, "route": {**TREE["route"], "routes": TREE["route"]["routes"][:1]}}})
    outcome = engine.evaluate_events([add_event(store, "asset.down", add_asset(store, "orders"), clock())])
    assert outcome.deliver == []  # pager route waits 10 s to gather the group
    with store.session() as s:
        due = {n.channel: (n.next_attempt_at - clock()).total_seconds() for n in s.scalars(select(Notification))}
    assert due == {"pager": 10.0}
    clock.advance(10)
    assert len(engine.sweep().deliver) == 1
