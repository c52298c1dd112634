"""Anomalies and forecasts through the API, ready to chart: the windows the rules found, and a
series' forecast with the line from its last point to the threshold."""

from __future__ import annotations

import random
from datetime import timedelta

from monitor_app.alerting.config import load_alerting_config
from monitor_app.alerting.operations import AlertOperations
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter
from monitor_app.store.base import utcnow
from tests.metrics.test_series_storage import add_asset


def _series_id(api, name: str) -> int:
    return api.get(f"/api/v1/metrics/series?name={name}", headers=api.headers).json["items"][0]["id"]


def test_it_lists_the_anomaly_windows_a_rule_found(api, store):
    rng = random.Random(4)
    asset = add_asset(store, "orders")
    other = add_asset(store, "billing")
    now = utcnow().replace(second=30, microsecond=0)
    start = now - timedelta(hours=3)
    samples = [SeriesSample(asset, "pg.transactions_per_second",
                            (500 if i >= 170 else 100) + rng.gauss(0, 3), start + timedelta(minutes=i))
               for i in range(180)]
    samples += [SeriesSample(other, "pg.transactions_per_second", 100 + rng.gauss(0, 3), start + timedelta(minutes=i))
                for i in range(180)]
    SeriesWriter(store).write(samples)
    rules = load_alerting_config({"default_rules": {"enabled": False}, "rules": [{"name": "TpsAnomaly", "kind": "anomaly", "min_effect": 10,
                                             "series": "pg.transactions_per_second"}]})
    assert AlertOperations(store, rules, "k", clock=lambda: now).evaluate_metrics().fired == 1

    got = api.get(f"/api/v1/metrics/anomalies?asset_id={asset}", headers=api.headers).json
    assert got["total"] == 1
    (window,) = got["items"]
    assert window["metric"] == "pg.transactions_per_second" and window["direction"] == "up" and window["end"] is None
    assert window["start"] == (start + timedelta(minutes=170)).replace(second=0).isoformat()
    assert 95 < window["baseline"] < 105 and window["score"] > 10 and window["rule"] == "TpsAnomaly"
    assert api.get(f"/api/v1/metrics/anomalies?asset_id={other}", headers=api.headers).json["total"] == 0
    assert api.get("/api/v1/metrics/anomalies?open=false", headers=api.headers).json["total"] == 0
    assert api.get("/api/v1/metrics/anomalies?metric=pg.trans*", headers=api.headers).json["total"] == 1
    assert api.get("/api/v1/metrics/anomalies", headers={}).status_code == 401


def test_it_forecasts_a_series_and_draws_the_line_to_the_threshold(api, store):
    asset = add_asset(store, "db-host")
    now = utcnow().replace(second=0, microsecond=0)
    start = now - timedelta(hours=10)
    # 2 % an hour from 50 %: 70 % now, 100 % in 15 h.
    SeriesWriter(store).write([SeriesSample(asset, "host.disk_percent", 50 + 2 * i / 60, start + timedelta(minutes=i))
                               for i in range(600)])
    series_id = _series_id(api, "host.disk_percent")
    got = api.get("/api/v1/metrics/forecast", query_string={"series_id": series_id, "threshold": 100, "window": 6 * 3600},
                  headers=api.headers).json
    assert abs(got["slope_per_hour"] - 2.0) < 0.05 and 14 < got["hours_to_threshold"] < 16
    assert got["line"][1] == {"at": got["eta"], "value": 100.0} and 69 < got["line"][0]["value"] < 71
    # A day's window has not been seen whole yet: no forecast, and it says why.
    got = api.get("/api/v1/metrics/forecast", query_string={"series_id": series_id, "threshold": 100},
                  headers=api.headers).json
    assert got["eta"] is None and got["slope_per_hour"] is None and 9.9 < got["history_hours"] < 10.1


def test_forecast_input_errors_name_the_field(api, store):
    bad = api.get("/api/v1/metrics/forecast", query_string={"series_id": 1, "threshold": "nan"}, headers=api.headers)
    assert bad.status_code == 400 and "threshold" in bad.json["errors"]
    bad = api.get("/api/v1/metrics/forecast", query_string={"series_id": 1, "threshold": 5, "window": 60},
                  headers=api.headers)
    assert bad.status_code == 400 and "window" in bad.json["errors"]
    missing = api.get("/api/v1/metrics/forecast", query_string={"series_id": 999999, "threshold": 5},
                      headers=api.headers)
    assert missing.status_code == 404
