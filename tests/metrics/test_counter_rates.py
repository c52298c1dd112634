"""Counters into rates: a reset, a restart or a counter going back drops the interval."""

from __future__ import annotations

import pytest

from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.pg_fast_rates import derived


def poll(at, started=100.0, reset=None, **counters):
    return CounterPoll(at, started, reset, {k: float(v) for k, v in counters.items()})


def test_it_turns_two_polls_into_rates_and_ratios_of_the_interval():
    span, dropped = interval(poll(0, xact_commit=100, xact_rollback=10, blks_hit=900, blks_read=100),
                             poll(10, xact_commit=190, xact_rollback=20, blks_hit=1890, blks_read=110))
    assert dropped is None
    rates = dict(derived(span))
    assert rates["pg.transactions_per_second"] == pytest.approx(10.0)
    assert rates["pg.rollback_ratio"] == pytest.approx(0.1)
    # Per interval, not since start: 990 hits and 10 reads in these ten seconds.
    assert rates["pg.cache_hit_ratio"] == pytest.approx(0.99)


@pytest.mark.parametrize("previous, current, why", [
    (None, poll(10, xact_commit=5), "first poll"),
    (poll(0, xact_commit=5), poll(10, started=200.0, xact_commit=7), "server restarted"),
    (poll(0, xact_commit=5), poll(10, reset=50.0, xact_commit=7), "statistics reset"),
    (poll(0, xact_commit=500, deadlocks=3), poll(10, xact_commit=7, deadlocks=3), "counters went back"),
    (poll(10, xact_commit=5), poll(10, xact_commit=6), "no time passed since the last poll"),
])
def test_it_drops_an_interval_that_spans_a_reset_rather_than_report_a_negative_rate(previous, current, why):
    assert interval(previous, current) == (None, why)


def test_an_idle_interval_has_no_cache_hit_ratio_rather_than_a_made_up_one():
    span, _ = interval(poll(0, blks_hit=5, blks_read=5, xact_commit=1, xact_rollback=0),
                       poll(10, blks_hit=5, blks_read=5, xact_commit=1, xact_rollback=0))
    rates = dict(derived(span))
    assert "pg.cache_hit_ratio" not in rates and rates["pg.rollback_ratio"] == 0.0


@pytest.mark.parametrize("stored", [None, {}, {"at": "x", "counters": {}}, {"at": 1, "counters": {"a": "NaNx"}},
                                    {"at": 1, "counters": [1, 2]}, "garbage"])
def test_a_damaged_stored_poll_is_a_first_poll_not_a_crash(stored):
    assert CounterPoll.from_json(stored) is None


def test_a_stored_poll_comes_back_as_it_was():
    p = poll(12.5, started=3.0, reset=4.0, xact_commit=9)
    assert CounterPoll.from_json(p.as_json()) == p


def test_a_bad_metrics_setting_is_named_by_its_field():
    from monitor_app.config.declarative import parse_config
    from monitor_app.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config({"metrics": {"fast_interval": 0, "assets": {"orders-db": {"fast_interval": "often"}},
                                  "tier": "x"}})
    fields = [path for path, _ in info.value.errors]
    assert fields == ["metrics.fast_interval", "metrics.assets.orders-db.fast_interval", "metrics.tier"]
    config = parse_config({"metrics": {"assets": {"orders-db": {"fast_interval": 30}}}})
    assert (config.metrics.fast_interval_for("orders-db"), config.metrics.fast_interval_for("other")) == (30, 10)
