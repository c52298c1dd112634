"""GET /metrics: latest values in Prometheus' text format, parsed back with prometheus_client's parser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor_app.access.api_keys import create_key
from monitor_app.config.settings import load_settings
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter
from monitor_app.platform.runtime import Runtime
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset

TOKEN = "scrape-token-0123456789"


@pytest.fixture()
def scrape(store, tmp_path):
    from api import create_app

    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k",
                             config_file=tmp_path / "none.yaml", metrics_bearer_token=TOKEN)
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    client = create_app(rt).test_client()
    with store.session() as s:
        client.viewer_key = create_key(s, name="viewer", role="viewer")[1]
    return client


def _asset(store, name: str, labels: dict) -> int:
    with store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name=name, source="docker", external_id=name,
                      labels=labels, connection={}, details={}, status="up")
        s.add(asset)
        s.flush()
        return asset.id


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_it_exposes_fresh_latest_values_labelled_by_asset_and_engine(scrape, store):
    hostile = {"team": "payments", "com.example/route": 'a"b\nc', "db_password": "hunter2", "9lives": "x"}
    orders = _asset(store, "orders-db", hostile)
    now = utcnow()
    SeriesWriter(store).write([
        SeriesSample(orders, "pg.connections", 7, now, {"state": "active"}),
        SeriesSample(orders, "pg.connections", 2, now, {"state": "idle in transaction", "engine": "spoofed"}),
        SeriesSample(orders, "pg.cache_hit_ratio", 0.98, now - timedelta(hours=1)),  # stale: left out
    ])
    resp = scrape.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain; version=0.0.4")
    got = samples(resp.get_data(as_text=True))
    common = {"asset": "orders-db", "asset_id": str(orders), "engine": "postgresql", "asset_label_team": "payments",
              "asset_label_com_example_route": 'a"b\nc', "asset_label_db_password": "[redacted]",
              "asset_label_l_9lives": "x"}
    assert got == {
        ("dbmon_pg_connections", tuple(sorted({**common, "state": "active"}.items()))): 7.0,
        ("dbmon_pg_connections", tuple(sorted({**common, "state": "idle in transaction"}.items()))): 2.0,
    }
    assert "hunter2" not in resp.get_data(as_text=True)


def test_it_takes_the_configured_token_or_a_viewer_key_and_nothing_else(scrape):
    assert scrape.get("/metrics").status_code == 401
    assert scrape.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    assert scrape.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert scrape.get("/metrics", headers={"Authorization": f"Bearer {scrape.viewer_key}"}).status_code == 200
    assert scrape.get("/metrics", headers={"X-API-Key": scrape.viewer_key}).status_code == 200
