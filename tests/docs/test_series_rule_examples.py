"""The documented anomaly, baseline and forecast rules (docs/anomalies.md), each run over stored
series the way the worker evaluates it: these rules read the series store, whatever collector
filled it (bench/anomaly_replay.py runs one over a day of real pgbench metrics)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from monitor_app.alerting.config import load_alerting_config
from monitor_app.alerting.operations import AlertOperations
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter
from monitor_app.store.models.alerting import Alert
from tests.alerting.conftest import Clock
from tests.alerting.helpers import add_asset
from tests.docs.test_yaml_examples import documented_rules


def engine_for(store, name: str, clock: Clock) -> AlertOperations:
    config = load_alerting_config({"default_rules": {"enabled": False}})
    config.rules = [documented_rules()[name]]
    return AlertOperations(store, config, "test-secret-key", clock=clock)


def firing(store) -> list[Alert]:
    with store.session() as s:
        return list(s.scalars(select(Alert).where(Alert.state == "firing")))


def write(store, asset_id: int, name: str, start, minutes: int, value, labels=None, every: int = 1) -> None:
    SeriesWriter(store).write([SeriesSample(asset_id, name, value(i), start + timedelta(minutes=i), labels or {})
                               for i in range(0, minutes, every)])


def run(store, clock: Clock, engine, asset_id: int, name: str, minutes: int, value, labels=None) -> None:
    for _ in range(minutes):
        write(store, asset_id, name, clock(), 1, value, labels)
        clock.advance(60)
        engine.evaluate_metrics()


def test_checkout_latency_anomaly_pages_for_the_orders_statement_only(store):
    clock, rng = Clock(), random.Random(1)
    engine = engine_for(store, "CheckoutLatencyAnomaly", clock)
    db = add_asset(store, "shop-db", labels={"team": "checkout"})
    orders = {"queryid": "1", "query": "SELECT * FROM orders WHERE id = $1"}
    users = {"queryid": "2", "query": "SELECT * FROM users WHERE id = $1"}
    for labels in (orders, users):
        write(store, db, "pg.statement_mean_ms", clock() - timedelta(hours=3), 180, lambda i: 12 + rng.gauss(0, 1),
              labels)
    engine.evaluate_metrics()
    for _ in range(7):  # both slow down; only the orders statement is watched
        write(store, db, "pg.statement_mean_ms", clock(), 1, lambda i: 85 + rng.gauss(0, 1), orders)
        write(store, db, "pg.statement_mean_ms", clock(), 1, lambda i: 85 + rng.gauss(0, 1), users)
        clock.advance(60)
        engine.evaluate_metrics()
    (alert,) = firing(store)
    assert alert.labels["queryid"] == "1" and alert.labels["asset"] == "shop-db"
    assert 11 < float(alert.annotations["baseline"]) < 13 and float(alert.annotations["value"]) > 80
    assert "pg.statement_mean_ms on shop-db is anomalous" in alert.annotations["summary"]


def test_temp_spill_surge_pages_past_three_times_the_usual_spill(store):
    clock, rng = Clock(), random.Random(2)
    engine = engine_for(store, "TempSpillSurge", clock)
    db = add_asset(store, "shop-db")
    write(store, db, "pg.temp_bytes_per_second", clock() - timedelta(hours=2), 120, lambda i: 2e6 + rng.gauss(0, 2e5))
    engine.evaluate_metrics()
    run(store, clock, engine, db, "pg.temp_bytes_per_second", 12, lambda i: 5e6)  # 2.5x: unusual, not the news
    assert firing(store) == []
    run(store, clock, engine, db, "pg.temp_bytes_per_second", 12, lambda i: 15e6)
    (alert,) = firing(store)
    assert 1.8e6 < float(alert.annotations["baseline"]) < 2.2e6


def test_database_outgrows_its_volume_within_the_lead_time_only(store):
    clock = Clock()
    engine = engine_for(store, "DatabaseOutgrowsItsVolume", clock)
    slow, fast = add_asset(store, "archive-db"), add_asset(store, "events-db")
    start = clock() - timedelta(days=2)
    # Every 10 minutes, as the slow tier writes it: 2 GB a day (10 days to go), 5 GB a day (4 days).
    write(store, slow, "pg.database_size_bytes", start, 2 * 1440, lambda i: 476e9 + 2e9 * i / 1440, every=10)
    write(store, fast, "pg.database_size_bytes", start, 2 * 1440, lambda i: 470e9 + 5e9 * i / 1440, every=10)
    engine.evaluate_metrics()
    (alert,) = firing(store)
    assert alert.labels["asset"] == "events-db"
    assert 80 < float(alert.annotations["hours_to_threshold"]) < 110 and alert.annotations["eta"] != "none"
