"""Threshold rules over stored samples (with `for`), event rules over stored events."""

from __future__ import annotations

from sqlalchemy import select

from monitor_app.store.models.alerting import Alert
from tests.alerting.helpers import add_asset, add_event, add_sample

CHANNELS = {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/unused"}}


def alerts(store) -> dict[str, Alert]:
    with store.session() as s:
        return {a.labels.get("asset", "") + a.labels.get("mount", ""): a for a in s.scalars(select(Alert))}


def test_it_fires_a_threshold_rule_only_after_its_for_duration(store, clock, make_engine):
    engine = make_engine({"rules": [{"name": "HighLag", "kind": "threshold", "metric": "replication_lag_s",
                                     "op": ">", "value": 30, "for": "2m", "severity": "critical"}]})
    db = add_asset(store, "replica-1")
    add_sample(store, "replication_lag_s", db, 45, clock())
    assert engine.evaluate_metrics().fired == 0
    assert alerts(store)["replica-1"].state == "pending"
    clock.advance(60)
    add_sample(store, "replication_lag_s", db, 50, clock())
    assert engine.evaluate_metrics().fired == 0
    clock.advance(61)
    add_sample(store, "replication_lag_s", db, 52, clock())
    outcome = engine.evaluate_metrics()
    assert outcome.fired == 1
    alert = alerts(store)["replica-1"]
    assert alert.state == "firing" and alert.value == 52 and "replica-1" in alert.annotations["summary"]


def test_it_drops_a_pending_alert_that_clears_before_its_for_duration(store, clock, make_engine):
    engine = make_engine({"rules": [{"name": "HighLag", "kind": "threshold", "metric": "lag", "value": 30, "for": "5m"}]})
    db = add_asset(store, "replica-1")
    add_sample(store, "lag", db, 45, clock())
    engine.evaluate_metrics()
    clock.advance(30)
    add_sample(store, "lag", db, 3, clock())
    outcome = engine.evaluate_metrics()
    assert outcome.fired == 0 and outcome.resolved == 0
    assert alerts(store)["replica-1"].state == "inactive"


def test_it_selects_assets_by_label_and_series_by_sample_labels(store, clock, make_engine):
    engine = make_engine({"rules": [{"name": "DiskFull", "kind": "threshold", "metric": "disk_used_pct", "value": 90,
                                     "match": ["env=prod"], "sample_match": ['mount=~"/data.*"']}]})
    prod, dev = add_asset(store, "prod-db", {"env": "prod"}), add_asset(store, "dev-db", {"env": "dev"})
    for asset in (prod, dev):
        add_sample(store, "disk_used_pct", asset, 95, clock(), {"mount": "/data"})
        add_sample(store, "disk_used_pct", asset, 97, clock(), {"mount": "/"})
        add_sample(store, "disk_used_pct", asset, 20, clock(), {"mount": "/data2"})
    assert engine.evaluate_metrics().fired == 1
    firing = {k for k, a in alerts(store).items() if a.state == "firing"}
    assert firing == {"prod-db/data"}


def test_it_resolves_a_threshold_alert_when_its_series_goes_quiet(store, clock, make_engine):
    engine = make_engine({"rules": [{"name": "Cpu", "kind": "threshold", "metric": "cpu", "value": 90,
                                     "stale_after": "2m"}]})
    db = add_asset(store, "db")
    add_sample(store, "cpu", db, 99, clock())
    assert engine.evaluate_metrics().fired == 1
    clock.advance(180)
    assert engine.evaluate_metrics().resolved == 1
    assert alerts(store)["db"].state == "resolved"


def test_it_fires_schema_rules_only_at_or_above_the_configured_risk(store, clock, make_engine):
    engine = make_engine({"rules": [{"name": "RiskySchemaChange", "kind": "event", "event_types": ["schema.*"],
                                     "min_risk": "high", "label_from_payload": ["object"], "resolve_after": "1h"}]})
    db = add_asset(store, "orders")
    low = add_event(store, "schema.changed", db, clock(), payload={"object": "public.a", "changes": [{"risk": "low"}]})
    high = add_event(store, "schema.changed", db, clock(),
                     payload={"object": "public.b", "changes": [{"risk": "low"}, {"risk": "critical"}]})
    outcome = engine.evaluate_events([low, high])
    assert outcome.fired == 1
    [alert] = alerts(store).values()
    assert alert.labels["object"] == "public.b"
    clock.advance(3601)
    assert engine.sweep().resolved == 1


def test_it_filters_event_rules_by_payload_and_event_severity(store, clock, make_engine):
    engine = make_engine({"rules": [
        {"name": "UnplannedRestart", "kind": "event", "event_types": ["container.restart"],
         "payload_match": {"planned": False}, "min_event_severity": "warning", "label_from_payload": ["container"]}]})
    c = add_asset(store, "pg-container", kind="container")
    planned = add_event(store, "container.restart", c, clock(), payload={"planned": True, "container": "pg"})
    quiet = add_event(store, "container.restart", c, clock(), severity="info", payload={"planned": False, "container": "pg"})
    real = add_event(store, "container.restart", c, clock(), payload={"planned": False, "container": "pg"})
    assert engine.evaluate_events([planned, quiet]).fired == 0
    assert engine.evaluate_events([real]).fired == 1


def test_it_evaluates_rules_added_through_the_api_table(store, clock, make_engine):
    from monitor_app.store.models.alerting import AlertRuleRow

    with store.session() as s:
        s.add(AlertRuleRow(name="CertExpiring", definition={"name": "CertExpiring", "kind": "event",
                                                            "event_types": ["tls.expiring"], "severity": "warning"}))
    engine = make_engine({})
    outcome = engine.evaluate_events([add_event(store, "tls.expiring", add_asset(store, "web"), clock())])
    assert outcome.fired == 1


def test_it_clears_alerts_of_a_rule_that_was_deleted(store, clock, make_engine):
    from sqlalchemy import delete

    from monitor_app.store.models.alerting import AlertRuleRow

    with store.session() as s:
        s.add(AlertRuleRow(name="Temp", definition={"name": "Temp", "kind": "event", "event_types": ["x.y"]}))
    engine = make_engine({})
    assert engine.evaluate_events([add_event(store, "x.y", add_asset(store, "db"), clock())]).fired == 1
    assert engine.sweep().resolved == 0
    with store.session() as s:
        s.execute(delete(AlertRuleRow))
    assert engine.sweep().resolved == 1
    assert alerts(store)["db"].resolved_by == "rule removed"


def test_threshold_rules_read_the_database_collectors_series_too(store, clock, make_engine):
    from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter

    engine = make_engine({"rules": [{"name": "TooManyIdleInTransaction", "kind": "threshold",
                                     "metric": "pg.sessions_by_state", "value": 5,
                                     "sample_match": ["state=idle in transaction"], "stale_after": "2m"}]})
    db, quiet = add_asset(store, "orders-db"), add_asset(store, "billing-db")
    writer = SeriesWriter(store)
    writer.write([SeriesSample(db, "pg.sessions_by_state", 2, clock(), {"state": "idle in transaction"}),
                  SeriesSample(db, "pg.sessions_by_state", 40, clock(), {"state": "idle"}),
                  SeriesSample(quiet, "pg.sessions_by_state", 1, clock(), {"state": "idle in transaction"})])
    assert engine.evaluate_metrics().fired == 0
    clock.advance(10)
    writer.write([SeriesSample(db, "pg.sessions_by_state", 9, clock(), {"state": "idle in transaction"})])
    assert engine.evaluate_metrics().fired == 1
    alert = alerts(store)["orders-db"]
    assert alert.state == "firing" and alert.value == 9
    clock.advance(180)  # the collector stopped writing: the series went stale
    assert engine.evaluate_metrics().resolved == 1
