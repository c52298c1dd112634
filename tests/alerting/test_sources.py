"""Alerting on the sources that exist: the reachability probe's asset.down/asset.up events
(reaching evaluation through the store's after-commit hook) and real host metric samples."""

from __future__ import annotations

import pytest
import yaml

from tests.services import free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture()
def inline_runtime(store, tmp_path, webhook_peer):
    """A Runtime whose dispatch runs alerting tasks in this process, so the hook's whole
    chain (evaluate -> deliver) is exercised without a broker."""
    from monitor_app.platform.runtime import Runtime
    from monitor_app.config.settings import load_settings
    import workers.tasks.alerting as tasks

    (tmp_path / "dbmon.yaml").write_text(yaml.safe_dump({"alerting": {
        "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "resolve_on": ["asset.up"],
                   "severity": "critical"},
                  {"name": "RiskySchemaChange", "kind": "event", "event_types": ["schema.changed"],
                   "min_risk": "high", "severity": "critical"},
                  {"name": "DiskAlmostFull", "kind": "threshold", "metric": "host.disk_percent", "op": ">=",
                   "value": 0, "sample_match": ["path=~/.*"]}],
        "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": webhook_peer.url()}},
        "route": {"channels": ["ops"]}}}))
    settings = load_settings(data_dir=tmp_path, database_url=store.url, config_file=tmp_path / "dbmon.yaml",
                             secret_key="k")
    by_name = {t.name: t for t in (tasks.evaluate_events, tasks.evaluate_metrics, tasks.deliver, tasks.escalate,
                                   tasks.sweep_outbox)}
    ran = []

    def send(name, kwargs, run_id, queue):
        ran.append(name)
        if name in by_name:
            by_name[name].domain_fn(rt, **kwargs)

    rt = Runtime(settings, sender=send)
    rt.ran = ran
    yield rt
    rt.close()


def test_it_pages_when_the_reachability_probe_finds_an_asset_down_and_clears_when_up(inline_runtime, webhook_peer):
    from monitor_app.assets.reachability import apply_probe, probe
    from monitor_app.store.models.core import Asset

    rt = inline_runtime
    with rt.store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name="orders", source="config", external_id="orders",
                      labels={}, details={}, status="up",
                      connection={"host": "127.0.0.1", "port": free_port(), "database": "postgres", "user": "postgres",
                                  "insecure": True})  # the shared test server: trust auth, no TLS
        s.add(asset)
        s.flush()
        asset_id = asset.id
    with rt.store.session() as s:  # nothing listens on that port: a real failed probe
        asset = s.get(Asset, asset_id)
        assert apply_probe(s, asset, probe(asset, None, 2, rt.connection_budget), 30) == "down"
    assert rt.ran[:2] == ["alerts.evaluate_events", "alerts.deliver"]
    body = webhook_peer.wait_for(1)[0].json()
    assert body["status"] == "firing" and "orders is unreachable" in body["alerts"][0]["annotations"]["summary"]
    with rt.store.session() as s:  # the real PostgreSQL answers
        asset = s.get(Asset, asset_id)
        asset.connection = {**asset.connection, "port": 5432}
        assert apply_probe(s, asset, probe(asset, None, 5, rt.connection_budget), 30) == "up"
    assert webhook_peer.wait_for(2)[1].json()["status"] == "resolved"


def test_it_evaluates_threshold_rules_over_real_host_samples(inline_runtime, webhook_peer):
    import workers.tasks.alerting as tasks
    import workers.tasks.metrics as metrics

    rt = inline_runtime
    metrics.host_sample.domain_fn(rt)
    result = tasks.evaluate_metrics.domain_fn(rt)
    assert result["fired"] >= 1 and result["deliver"]
    body = webhook_peer.wait_for(1)[0].json()
    assert body["commonLabels"]["alertname"] == "DiskAlmostFull" and body["alerts"][0]["labels"]["path"].startswith("/")


def test_it_pages_on_a_risky_schema_change_but_not_on_a_harmless_one(inline_runtime, webhook_peer, tmp_path):
    import sqlite3

    from monitor_app.schema.check import run_check
    from monitor_app.store.models.core import Asset

    rt = inline_runtime
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);"
                         "INSERT INTO orders (total) VALUES (1.5);")
    with rt.store.session() as s:
        asset = Asset(kind="database", engine="sqlite", name="app", source="config", external_id="app",
                      labels={}, details={}, status="up", connection={"path": str(path)})
        s.add(asset)
        s.flush()
        asset_id = asset.id
    run_check(rt, asset_id, {"source": "manual"})  # baseline
    with sqlite3.connect(path) as db:
        db.execute("CREATE INDEX ix_orders_total ON orders (total)")
    assert run_check(rt, asset_id, {"source": "manual"})["changed"]
    assert webhook_peer.wait_for(1, timeout=0.5) == []  # a new index is low risk: no page
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE orders")
    assert run_check(rt, asset_id, {"source": "manual"})["changed"]
    body = webhook_peer.wait_for(1)[0].json()
    assert body["commonLabels"]["alertname"] == "RiskySchemaChange"
    assert "orders" in body["alerts"][0]["annotations"]["summary"]
