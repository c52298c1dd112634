"""The built-in rule pack: merged under the user's rules, switchable off and overridable by name."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor_app.alerting.config import load_alerting_config
from monitor_app.config.declarative import parse_config
from monitor_app.errors import ConfigError
from monitor_app.store.models.alerting import Alert
from tests.alerting.helpers import add_asset, add_event

PACK_RULE = "PostureCriticalFinding"


def names(cfg) -> list[str]:
    return [r.name for r in cfg.rules]


def test_the_pack_is_on_by_default_and_marked_as_built_in():
    cfg = load_alerting_config({})
    assert PACK_RULE in names(cfg)
    assert PACK_RULE in cfg.builtin_rule_names()


def test_it_is_switched_off_by_name_or_altogether():
    assert PACK_RULE not in names(load_alerting_config({"default_rules": {"disable": [PACK_RULE]}}))
    assert names(load_alerting_config({"default_rules": {"enabled": False}})) == []


def test_a_user_rule_of_the_same_name_replaces_it():
    cfg = load_alerting_config({"rules": [{"name": PACK_RULE, "kind": "event", "event_types": ["posture.*"],
                                           "severity": "info"}]})
    (rule,) = [r for r in cfg.rules if r.name == PACK_RULE]
    assert rule.severity == "info" and rule.event_types == ["posture.*"]
    assert PACK_RULE not in cfg.builtin_rule_names()


def test_single_fields_are_overridden_and_the_rest_kept():
    cfg = load_alerting_config({"default_rules": {"override": {PACK_RULE: {"severity": "page",
                                                                           "match": ["env=prod"]}}}})
    (rule,) = [r for r in cfg.rules if r.name == PACK_RULE]
    assert rule.severity == "page" and [str(m) for m in rule.match] == ['env="prod"']
    assert rule.event_types == ["posture.finding_opened"]


def test_user_rule_errors_keep_their_paths():
    with pytest.raises(ConfigError) as info:
        load_alerting_config({"rules": [{"name": "A", "kind": "event", "event_types": ["x"]},
                                        {"name": "A", "kind": "event", "event_types": ["y"]}]})
    assert "duplicate rule name" in dict(info.value.errors)["alerting.rules[1].name"]


@pytest.mark.parametrize("section, field, text", [
    ({"disable": ["NoSuchRule"]}, "alerting.default_rules.disable[0]", "no built-in rule named 'NoSuchRule'"),
    ({"override": {"NoSuchRule": {"severity": "page"}}}, "alerting.default_rules.override.NoSuchRule",
     "no built-in rule"),
    ({"override": {PACK_RULE: {"severity": "loud"}}}, f"alerting.default_rules.override.{PACK_RULE}.severity",
     "Input should be"),
    ({"override": {PACK_RULE: {"name": "Other"}}}, f"alerting.default_rules.override.{PACK_RULE}.name",
     "cannot be overridden"),
    ({"enabled": "maybe"}, "alerting.default_rules.enabled", "valid boolean"),
])
def test_bad_sections_name_the_field(section, field, text):
    with pytest.raises(ConfigError) as info:
        parse_config({"alerting": {"default_rules": section}})
    errors = dict(info.value.errors)
    assert field in errors, errors
    assert text in errors[field]


def test_a_critical_posture_finding_pages_and_its_resolution_clears_it(store, clock, make_engine):
    engine = make_engine({})
    db = add_asset(store, "orders-db")
    warning = add_event(store, "posture.finding_opened", db, clock(), severity="warning",
                        payload={"finding": "public_schema_create"})
    critical = add_event(store, "posture.finding_opened", db, clock(), severity="critical",
                         payload={"finding": "hba_trust_remote"}, summary="orders-db: trust from other hosts")
    outcome = engine.evaluate_events([warning, critical])
    assert outcome.fired == 1
    with store.session() as s:
        (alert,) = s.scalars(select(Alert)).all()
        assert alert.rule == PACK_RULE and alert.state == "firing"
        assert alert.labels["finding"] == "hba_trust_remote" and alert.labels["asset"] == "orders-db"
        assert alert.severity == "critical"
    clock.advance(60)
    resolved = add_event(store, "posture.finding_resolved", db, clock(), severity="info",
                         payload={"finding": "hba_trust_remote"})
    assert engine.evaluate_events([resolved]).resolved == 1
