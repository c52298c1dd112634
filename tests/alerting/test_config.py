"""The alerting config section: bad input names the field, good input reads naturally."""

from __future__ import annotations

import pytest

from monitor_app.alerting.config import load_alerting_config, load_rule, parse_duration
from monitor_app.alerting.matchers import Matcher, parse_matchers
from monitor_app.errors import ConfigError


def errors_of(data: dict) -> dict:
    with pytest.raises(ConfigError) as info:
        load_alerting_config(data)
    return dict(info.value.errors)


def test_it_names_the_field_of_a_bad_duration():
    errs = errors_of({"rules": [{"name": "cpu", "kind": "threshold", "metric": "cpu", "value": 90, "for": "5 parsecs"}]})
    assert list(errs) == ["alerting.rules[0].for"]
    assert "cannot read duration" in errs["alerting.rules[0].for"]


def test_it_names_missing_and_unknown_fields():
    errs = errors_of({"rules": [{"name": "x", "kind": "event"}], "chanels": {}})
    assert "alerting.rules[0].event_types" in errs
    assert "alerting.chanels" in errs


def test_it_rejects_routes_and_policies_naming_unknown_channels():
    errs = errors_of({
        "channels": {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/x"}},
        "route": {"channels": ["ops"], "routes": [{"matchers": ["severity=page"], "channels": ["pager"],
                                                   "escalation": "nightly"}]},
        "escalation_policies": {"day": {"steps": [{"after": "5m", "channels": ["phone"]}]}},
    })
    assert errs == {
        "alerting.route.routes[0].channels[0]": "unknown channel 'pager'",
        "alerting.route.routes[0].escalation": "unknown escalation policy 'nightly'",
        "alerting.escalation_policies.day.steps[0].channels[0]": "unknown channel 'phone'",
    }


def test_it_rejects_a_bad_channel_url_and_a_bad_regex_matcher():
    errs = errors_of({"channels": {"ops": {"type": "webhook", "url": "ftp://x"}},
                      "silences": [{"matchers": ["env=~(prod"], "ends_at": "2030-01-01T00:00:00Z"}]})
    assert "alerting.channels.ops.url" in errs
    assert "invalid regex" in errs["alerting.silences[0].matchers"]


def test_it_rejects_duplicate_rule_names():
    rule = {"name": "down", "kind": "event", "event_types": ["asset.down"]}
    errs = errors_of({"rules": [rule, rule]})
    assert "duplicate rule name" in errs["alerting.rules[1].name"]


def test_it_reads_durations_in_several_forms():
    assert parse_duration(90) == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_duration("-5")


def test_it_reads_matchers_as_strings_or_a_mapping():
    assert parse_matchers(['env=~"prod|stage"', "team!=db"]) == [Matcher("env", "=~", "prod|stage"), Matcher("team", "!=", "db")]
    assert parse_matchers({"asset": "orders"}) == [Matcher("asset", "=", "orders")]
    assert Matcher.parse("env=~prod").matches({"env": "prod"})
    assert not Matcher.parse("env=~prod").matches({"env": "preprod"})  # anchored like Alertmanager
    assert Matcher.parse("missing=").matches({})


def test_it_validates_an_api_rule_on_its_own():
    rule = load_rule({"name": "lag", "kind": "threshold", "metric": "replication_lag_s", "op": ">=", "value": 30,
                      "for": "2m", "match": {"env": "prod"}})
    assert rule.for_ == 120 and rule.breached(30) and not rule.breached(29)
    with pytest.raises(ConfigError) as info:
        load_rule({"name": "bad name!", "kind": "threshold", "metric": "x", "value": "high"})
    assert {path for path, _ in info.value.errors} == {"rule.name", "rule.value"}


def test_it_accepts_a_complete_section():
    cfg = load_alerting_config({
        "rules": [{"name": "lag", "kind": "threshold", "metric": "lag", "value": 10, "for": "1m"}],
        "channels": {
            "ops": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "k"},
            "chat": {"type": "slack", "base_url": "http://127.0.0.1:9", "path": "/services/T/B/X",
                     "rate_limit": {"per_minute": 6, "burst": 2}},
            "mail": {"type": "email", "host": "127.0.0.1", "from": "dbmon@example.org", "to": ["dba@example.org"]},
            "other": {"type": "apprise", "urls": ["json://127.0.0.1:9/x"]},
        },
        "route": {"channels": ["ops"], "group_by": ["asset"], "routes": [
            {"matchers": ["severity=~critical|page"], "channels": ["chat", "mail"], "continue": True,
             "escalation": "oncall", "group_interval": "10s"}]},
        "escalation_policies": {"oncall": {"steps": [{"after": "5m", "channels": ["mail"]}], "repeat": 2}},
        "inhibit_rules": [{"source_matchers": ["alertname=AssetDown"], "target_matchers": ["alertname!=AssetDown"],
                           "equal": ["asset"]}],
    })
    assert cfg.channels["chat"].url == "http://127.0.0.1:9/services/T/B/X"
    assert cfg.route.routes[0].continue_ and cfg.route.routes[0].group_interval == 10


def test_it_reports_alerting_errors_from_the_config_file_by_path(tmp_path):
    from monitor_app.config.declarative import load_config

    path = tmp_path / "dbmon.yaml"
    path.write_text("alerting:\n  rules:\n    - {name: lag, kind: threshold, metric: lag, value: 1, for: soon}\n"
                    "  route: {channels: [nowhere]}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert dict(info.value.errors) == {"alerting.rules[0].for": "cannot read duration 'soon'; expected e.g. 30s, 5m, 1h30m"}
    path.write_text("alerting:\n  route: {channels: [nowhere]}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == [("alerting", "route.channels[0]: unknown channel 'nowhere'")]
    path.write_text("alerting:\n  channels: {ops: {type: webhook, url: 'http://127.0.0.1:9/x'}}\n"
                    "  route: {channels: [ops]}\n")
    assert load_config(path).alerting.route.channels == ["ops"]


def test_it_accepts_the_example_in_the_documentation():
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "alerting.md").read_text()
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    cfg = load_alerting_config(example["alerting"])
    assert {r.name for r in cfg.rules} >= {"AssetDown", "DiskAlmostFull"}
