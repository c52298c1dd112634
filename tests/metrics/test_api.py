"""The metrics API: series with their latest values, and ranges read from the tier that fits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter, compact
from monitor_app.store.base import utcnow
from tests.metrics.test_series_storage import add_asset


def test_it_lists_series_with_labels_and_latest_values(api, store):
    orders, billing = add_asset(store, "orders"), add_asset(store, "billing")
    now = utcnow()
    SeriesWriter(store).write([SeriesSample(orders, "pg.connections", 7, now, {"state": "active"}),
                               SeriesSample(orders, "pg.connections", 3, now, {"state": "idle"}),
                               SeriesSample(orders, "pg.cache_hit_ratio", 0.99, now),
                               SeriesSample(billing, "pg.connections", 1, now, {"state": "active"})])
    assert api.get("/api/v1/metrics/series").status_code == 401
    got = api.get(f"/api/v1/metrics/series?asset_id={orders}&name=pg.conn*", headers=api.headers).json
    assert got["total"] == 2
    assert [(i["labels"], i["last_value"]) for i in got["items"]] == [({"state": "active"}, 7.0), ({"state": "idle"}, 3.0)]
    # `_` and `%` in a name are themselves, not wildcards.
    assert api.get("/api/v1/metrics/series?name=pg%25", headers=api.headers).json["total"] == 0


def test_it_reads_a_range_in_steps_from_raw_samples_and_rollups(api, store):
    asset = add_asset(store)
    hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    SeriesWriter(store).write([SeriesSample(asset, "pg.tps", float(i % 60), hour + timedelta(seconds=10 * i))
                               for i in range(3 * 360)])
    compact(store, hour + timedelta(hours=3, minutes=1))
    series_id = api.get("/api/v1/metrics/series?name=pg.tps", headers=api.headers).json["items"][0]["id"]

    start = hour.isoformat()
    got = api.get("/api/v1/metrics/query", query_string={"series_id": series_id, "start": start, "step": 3600},
                  headers=api.headers).json
    assert got["tier"] == "1h" and got["series"][0]["name"] == "pg.tps"
    assert [(p["count"], p["min"], p["max"], p["avg"]) for p in got["series"][0]["points"]] == [(360, 0.0, 59.0, 29.5)] * 3

    end = (hour + timedelta(minutes=2)).isoformat()
    got = api.get("/api/v1/metrics/query", query_string={"series_id": series_id, "start": start, "end": end, "step": 10},
                  headers=api.headers).json
    assert got["tier"] == "raw" and [p["last"] for p in got["series"][0]["points"]] == [float(i) for i in range(12)]


@pytest.mark.parametrize(("query", "field"), [
    ("start=2026-01-01T00:00:00Z", "series_id"),
    ("series_id=1&start=yesterday", "start"),
    ("series_id=1&start=2026-01-01T00:00:00Z&step=0", "step"),
    ("series_id=1&start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", "end"),
    ("series_id=1&start=2000-01-01T00:00:00Z&end=2026-01-01T00:00:00Z&step=1", "step"),
    ("&".join(f"series_id={i}" for i in range(1, 202)) + "&start=2026-01-01T00:00:00Z", "series_id"),
])
def test_it_names_the_field_of_a_bad_range_query(api, query, field):
    resp = api.get(f"/api/v1/metrics/query?{query}", headers=api.headers)
    assert resp.status_code == 400 and field in resp.json["errors"], resp.json


def test_an_unknown_series_is_a_404(api):
    resp = api.get("/api/v1/metrics/query?series_id=99999&start=2026-01-01T00:00:00Z&step=86400", headers=api.headers)
    assert resp.status_code == 404 and "99999" in resp.json["message"]
