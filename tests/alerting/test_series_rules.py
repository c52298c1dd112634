"""The anomaly, baseline and forecast rule kinds over the stored series, on both store backends."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor_app.analysis.series_watch import pack, unpack
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter
from monitor_app.store.models.alerting import Alert
from monitor_app.store.models.analysis import MetricAnomaly, SeriesDetectorState
from tests.alerting.helpers import add_asset

TPS = "pg.transactions_per_second"


def write_minutes(store, asset_id: int, name: str, end, minutes: int, value, labels: dict | None = None) -> None:
    """One sample a minute for `minutes` minutes up to `end`; `value(i)` for minute i (0 = oldest)."""
    start = end - timedelta(minutes=minutes)
    SeriesWriter(store).write([SeriesSample(asset_id, name, value(i), start + timedelta(minutes=i), labels or {})
                               for i in range(minutes)])


def active(store, rule: str) -> list[Alert]:
    with store.session() as s:
        return list(s.scalars(select(Alert).where(Alert.rule == rule, Alert.state == "firing")))


def windows(store) -> list[MetricAnomaly]:
    with store.session() as s:
        return list(s.scalars(select(MetricAnomaly).order_by(MetricAnomaly.start)))


ANOMALY = {"name": "TpsAnomaly", "kind": "anomaly", "series": TPS, "min_effect": 10, "for": "5m",
           "severity": "warning"}


def test_an_anomaly_rule_fires_on_a_shift_with_its_evidence_and_resolves_after_it(store, clock, make_engine):
    rng = random.Random(7)
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [ANOMALY]})
    db = add_asset(store, "orders-db")
    write_minutes(store, db, TPS, clock(), 6 * 60, lambda i: 200 + rng.gauss(0, 4))
    assert engine.evaluate_metrics().fired == 0  # warm start from six hours of history: all normal
    for _ in range(8):  # the load triples
        write_minutes(store, db, TPS, clock() + timedelta(minutes=1), 1, lambda i: 600 + rng.gauss(0, 4))
        clock.advance(60)
        engine.evaluate_metrics()
    (alert,) = active(store, "TpsAnomaly")
    ann = alert.annotations
    assert alert.labels["asset"] == "orders-db" and alert.labels["metric"] == TPS
    assert 190 < float(ann["baseline"]) < 210 and 590 < float(ann["value"]) < 610 and float(ann["score"]) > 20
    assert ann["direction"] == "up" and "against a usual" in ann["summary"]
    (window,) = windows(store)
    assert window.end_at is None and window.direction == "up" and window.metric == TPS
    for _ in range(8):  # and back
        write_minutes(store, db, TPS, clock() + timedelta(minutes=1), 1, lambda i: 200 + rng.gauss(0, 4))
        clock.advance(60)
        engine.evaluate_metrics()
    assert active(store, "TpsAnomaly") == []
    (window,) = windows(store)
    assert window.end_at is not None and window.end_at - window.start >= timedelta(minutes=7)


def test_a_big_score_under_the_minimum_effect_pages_nobody(store, clock, make_engine):
    rng = random.Random(3)
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [ANOMALY]})
    db = add_asset(store, "quiet-db")
    # Near-flat: a rise of 3 transactions a second is a huge score and no news at all.
    write_minutes(store, db, TPS, clock(), 3 * 60, lambda i: 1 + rng.gauss(0, 0.05))
    engine.evaluate_metrics()
    write_minutes(store, db, TPS, clock() + timedelta(minutes=10), 10, lambda i: 4 + rng.gauss(0, 0.05))
    clock.advance(600)
    engine.evaluate_metrics()
    assert active(store, "TpsAnomaly") == [] and windows(store) == []


def test_an_asset_grouped_rule_pages_once_for_several_series_moving_together(store, clock, make_engine):
    rng = random.Random(11)
    rule = {"name": "Workload", "kind": "anomaly", "group": "asset", "for": "3m",
            "series": [{"metric": TPS, "min_effect": 10}, {"metric": "pg.wal_bytes_per_second", "min_effect": 1000},
                       {"metric": "pg.statement_mean_ms", "direction": "up", "min_effect": 5}]}
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [rule]})
    db = add_asset(store, "orders-db")
    for name, level in ((TPS, 300), ("pg.wal_bytes_per_second", 50_000), ("pg.statement_mean_ms", 20)):
        write_minutes(store, db, name, clock(), 3 * 60, lambda i, lv=level: lv * (1 + rng.gauss(0, 0.02)))
    engine.evaluate_metrics()
    for _ in range(5):  # a load change: TPS and WAL up; mean statement time *down* (cheap queries) is no page
        nxt = clock() + timedelta(minutes=1)
        write_minutes(store, db, TPS, nxt, 1, lambda i: 900 * (1 + rng.gauss(0, 0.02)))
        write_minutes(store, db, "pg.wal_bytes_per_second", nxt, 1, lambda i: 150_000 * (1 + rng.gauss(0, 0.02)))
        write_minutes(store, db, "pg.statement_mean_ms", nxt, 1, lambda i: 5 * (1 + rng.gauss(0, 0.02)))
        clock.advance(60)
        engine.evaluate_metrics()
    (alert,) = active(store, "Workload")
    assert "metric" not in alert.labels
    assert TPS in alert.annotations["series"] and "pg.wal_bytes_per_second" in alert.annotations["series"]
    assert "statement_mean_ms" not in alert.annotations["series"]


def test_a_baseline_rule_fires_above_a_multiple_of_the_usual_level(store, clock, make_engine):
    rng = random.Random(5)
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [{"name": "TempSpill", "kind": "baseline", "series": "pg.temp_bytes",
                                     "op": ">", "factor": 3, "for": "3m", "min_effect": 1000}]})
    db = add_asset(store, "orders-db")
    write_minutes(store, db, "pg.temp_bytes", clock(), 2 * 60, lambda i: 10_000 + rng.gauss(0, 500))
    engine.evaluate_metrics()
    for value in (25_000, 25_000, 25_000, 25_000):  # 2.5x: a clear anomaly, but under the rule's 3x
        write_minutes(store, db, "pg.temp_bytes", clock() + timedelta(minutes=1), 1, lambda i, v=value: v)
        clock.advance(60)
        engine.evaluate_metrics()
    assert active(store, "TempSpill") == []
    for value in (40_000, 40_000, 40_000, 40_000):
        write_minutes(store, db, "pg.temp_bytes", clock() + timedelta(minutes=1), 1, lambda i, v=value: v)
        clock.advance(60)
        engine.evaluate_metrics()
    (alert,) = active(store, "TempSpill")
    assert 9_000 < float(alert.annotations["baseline"]) < 11_000
    assert windows(store)[-1].kind == "baseline"


@pytest.mark.parametrize("damage", [b"not zlib", pack({"daily": {"history": [[1.0]] * 48}, "weekly": {}})],
                         ids=["not-zlib", "another-shape"])
def test_detector_state_survives_between_evaluations_and_a_damaged_one_starts_over(store, clock, make_engine, damage):
    rng = random.Random(2)
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [ANOMALY]})
    db = add_asset(store, "orders-db")
    write_minutes(store, db, TPS, clock(), 60, lambda i: 200 + rng.gauss(0, 4))
    engine.evaluate_metrics()
    with store.session() as s:
        row = s.scalars(select(SeriesDetectorState)).one()
        fed = row.fed_until
        assert fed == clock().replace(second=0) - timedelta(minutes=1)
        row.state = damage
    engine.evaluate_metrics()  # nothing new to feed: the damaged row is left alone until there is
    clock.advance(120)
    write_minutes(store, db, TPS, clock(), 2, lambda i: 200)
    engine.evaluate_metrics()
    with store.session() as s:
        row = s.scalars(select(SeriesDetectorState)).one()
        assert row.state != damage and row.fed_until > fed and "pending" in unpack(row.state)


FORECAST = {"name": "DiskFullSoon", "kind": "forecast", "metric": "host.disk_percent", "threshold": 100,
            "lead_time": "24h", "window": "6h", "severity": "critical"}


def grow(store, clock, asset_id: int, hours: int, start: float, per_hour: float, engine) -> dict:
    write_minutes(store, asset_id, "host.disk_percent", clock() + timedelta(hours=hours), hours * 60,
                  lambda i: start + per_hour * i / 60)
    clock.advance(hours * 3600)
    return engine.evaluate_metrics().as_dict()


def test_a_forecast_rule_fires_inside_its_lead_time_and_holds_with_hysteresis(store, clock, make_engine):
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [FORECAST]})
    db = add_asset(store, "db-host", kind="host")
    assert grow(store, clock, db, 8, 36, 0.5, engine)["fired"] == 0  # full in about 120 h
    assert grow(store, clock, db, 12, 40, 2.0, engine)["fired"] == 1  # 64 %, 2 % an hour: full in about 18 h
    (alert,) = active(store, "DiskFullSoon")
    assert 14 < float(alert.annotations["hours_to_threshold"]) < 20 and alert.annotations["eta"] != "none"
    assert 1.8 < float(alert.annotations["slope_per_hour"]) < 2.2 and "reaches 100" in alert.annotations["summary"]
    # Slower: about 27 h to go, past the lead time but inside 1.5 x it: the firing alert holds.
    assert grow(store, clock, db, 13, 64, 0.9, engine)["resolved"] == 0
    (alert,) = active(store, "DiskFullSoon")
    assert 24 < float(alert.annotations["hours_to_threshold"]) < 36
    assert grow(store, clock, db, 13, 75.7, 0.2, engine)["resolved"] == 1  # days away: resolved


def test_a_forecast_waits_for_enough_history(store, clock, make_engine):
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [FORECAST]})
    db = add_asset(store, "db-host", kind="host")
    write_minutes(store, db, "host.disk_percent", clock(), 3 * 60, lambda i: 90 + 3 * i / 60)  # 1.25 x 6 h not seen
    assert engine.evaluate_metrics().fired == 0 and active(store, "DiskFullSoon") == []


@pytest.mark.parametrize("rule, field, message", [
    ({"kind": "anomaly", "series": TPS, "sensitivity": "extreme"}, "sensitivity", "low, medium, high"),
    ({"kind": "anomaly", "series": [], "for": "5m"}, "series", "at least 1"),
    ({"kind": "anomaly", "series": TPS, "for": "10s"}, "for", "between 1m and 24h"),
    ({"kind": "baseline", "series": TPS, "op": ">", "factor": 0.5}, "", "factor above 1"),
    ({"kind": "forecast", "metric": "x", "threshold": 1, "lead_time": "1h", "window": "5m"}, "window", "between 1h"),
    ({"kind": "anomaly", "series": [{"metric": TPS, "direction": "sideways"}]}, "direction", "'up', 'down' or 'both'"),
])
def test_bad_series_rules_are_refused_naming_the_field(rule, field, message):
    from monitor_app.alerting.config import load_alerting_config
    from monitor_app.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_alerting_config({"rules": [{"name": "R", **rule}]})
    paths = " ".join(f"{p}: {m}" for p, m in caught.value.errors)
    assert "rules[0]" in paths and field in paths and message in paths


def test_the_webhook_carries_the_evidence_of_an_anomaly_and_of_a_forecast(store, clock, make_engine, webhook_peer):
    from tests.alerting.helpers import drain

    rng = random.Random(8)
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [ANOMALY, FORECAST],
                          "route": {"channels": ["ops"]},
                          "channels": {"ops": {"type": "webhook", "allow_private_targets": True,
                                               "url": webhook_peer.url()}}})
    db, host = add_asset(store, "orders-db"), add_asset(store, "db-host", kind="host")
    write_minutes(store, db, TPS, clock(), 6 * 60, lambda i: 200 + rng.gauss(0, 4))
    write_minutes(store, host, "host.disk_percent", clock(), 12 * 60, lambda i: 64 + 2 * i / 60)
    drain(engine, engine.evaluate_metrics().deliver)
    for _ in range(7):
        write_minutes(store, db, TPS, clock() + timedelta(minutes=1), 1, lambda i: 600 + rng.gauss(0, 4))
        clock.advance(60)
        drain(engine, engine.evaluate_metrics().deliver)
    bodies = [r.json() for r in webhook_peer.wait_for(2)]
    by_rule = {a["labels"]["alertname"]: a["annotations"] for b in bodies for a in b["alerts"]}
    assert set(by_rule) == {"TpsAnomaly", "DiskFullSoon"}
    assert {"baseline", "value", "score", "since"} <= set(by_rule["TpsAnomaly"])
    assert float(by_rule["TpsAnomaly"]["score"]) > 20
    assert {"eta", "hours_to_threshold", "slope_per_hour", "level", "threshold"} <= set(by_rule["DiskFullSoon"])
    assert 5 < float(by_rule["DiskFullSoon"]["hours_to_threshold"]) < 7  # 88 % now, 2 % an hour


def test_the_prune_job_drops_abandoned_detectors_and_windows_past_retention(store, clock, make_engine, tmp_path):
    from monitor_app.config.settings import load_settings
    from monitor_app.platform.runtime import Runtime
    from monitor_app.store.base import utcnow
    from workers.tasks.maintenance import prune as prune_task

    rng = random.Random(6)
    engine = make_engine({"default_rules": {"enabled": False}, "rules": [ANOMALY]})
    db = add_asset(store, "orders-db")
    write_minutes(store, db, TPS, clock(), 3 * 60, lambda i: 200 + rng.gauss(0, 4))
    engine.evaluate_metrics()
    with store.session() as s:
        s.add(MetricAnomaly(rule="Old", kind="anomaly", series_id=s.scalars(select(SeriesDetectorState)).one().series_id,
                            asset_id=db, metric=TPS, start=clock() - timedelta(days=120),
                            end_at=clock() - timedelta(days=119), direction="up", score=9.0, baseline=1.0, peak=9.0))
    rt = Runtime(load_settings(data_dir=tmp_path, database_url=store.url, secret_key="k"), sender=lambda *a: None)
    rt.__dict__["store"] = store
    with store.session() as s:  # the job runs on the real clock: fed a minute ago
        s.scalars(select(SeriesDetectorState)).one().updated_at = utcnow() - timedelta(minutes=1)
    kept = prune_task.domain_fn(rt)
    assert (kept["detectors"], kept["anomaly_windows"]) == (0, 1)
    with store.session() as s:  # nobody fed it for eight days
        s.scalars(select(SeriesDetectorState)).one().updated_at = utcnow() - timedelta(days=8)
    assert prune_task.domain_fn(rt)["detectors"] == 1
    with store.session() as s:
        assert s.scalars(select(SeriesDetectorState)).all() == [] and s.scalars(select(MetricAnomaly)).all() == []
