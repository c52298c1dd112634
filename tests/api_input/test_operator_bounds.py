"""What an operator may create is bounded: silence length and duration, matcher count,
regex cost, and how often a channel can be test-sent."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from monitor_app.alerting.matchers import Matcher, parse_matchers
from monitor_app.store.models.alerting import Notification, Silence
from tests.api_input.test_bad_input import field_error

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def silence(api, **body):
    return api.post("/api/v1/alerts/silences", json={"matchers": ["env=prod"], "duration": "1h", **body},
                    headers=api.keys["operator"])


def test_a_regex_matcher_runs_in_linear_time_on_hostile_labels():
    matcher = Matcher.parse("asset=~(a+)+$")
    hostile = {"asset": "a" * 24 + "!"}
    started = time.perf_counter()
    assert not matcher.matches(hostile)
    assert time.perf_counter() - started < 0.2
    assert Matcher.parse("asset=~(a+)+").matches({"asset": "aaaa"})


def test_it_refuses_regexes_a_linear_engine_cannot_run_with_the_reason():
    for pattern in ("(a)\\1", "(?=a)a", "x" * 2000, "a{1000}{1000}"):
        with pytest.raises(ValueError):
            Matcher.parse(f"asset=~{pattern}")


def test_it_bounds_silence_duration_and_start(api, store):
    assert field_error(silence(api, duration="400d"), "duration")
    assert field_error(silence(api, duration=None, ends_at="2999-01-01T00:00:00Z"), "ends_at")
    assert field_error(silence(api, starts_at="2999-01-01T00:00:00Z"), "starts_at")
    assert silence(api, duration="30d").status_code == 201


def test_it_bounds_matcher_count_pattern_length_and_comment(api, store):
    assert field_error(silence(api, matchers=[f"l{i}=v" for i in range(100)]), "matchers")
    assert field_error(silence(api, matchers=["asset=~" + "a" * 5000]), "matchers")
    assert field_error(silence(api, comment="c" * 20_000), "comment")
    with store.session() as s:
        assert s.scalars(select(Silence)).all() == []


def test_it_limits_test_sends_per_channel_and_minute(api, store):
    statuses = [api.post("/api/v1/alerts/channels/ops/test", headers=api.keys["operator"]).status_code
                for _ in range(12)]
    assert statuses.count(202) == api.rt.settings.channel_test_per_minute
    assert statuses[-1] == 429
    with store.session() as s:
        assert len(s.scalars(select(Notification).where(Notification.kind == "test")).all()) == statuses.count(202)


def test_rules_from_the_api_take_bounded_durations_and_matchers(api):
    rule = {"name": "lag", "kind": "threshold", "metric": "m", "value": 1}
    resp = api.post("/api/v1/alerts/rules", json={**rule, "for": "9" * 400 + "s"}, headers=api.keys["admin"])
    assert field_error(resp, "rule.for")
    resp = api.post("/api/v1/alerts/rules", json={**rule, "match": [f"l{i}=v" for i in range(100)]},
                    headers=api.keys["admin"])
    assert field_error(resp, "rule.match")
    with pytest.raises(ValueError):
        parse_matchers(["asset=~(?<=a)b"])
