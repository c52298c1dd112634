"""Every ```yaml block in README.md and docs/*.md is a config example: it loads through the real
config loader, and each alert rule it documents fires on the real event it names.

A block that is not a config file (a fragment, another tool's YAML) says so in its info string:
```yaml not-config
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from monitor_app.alerting.config import AlertingConfig, load_alerting_config
from monitor_app.alerting.operations import AlertOperations
from monitor_app.config.declarative import parse_config_text
from monitor_app.errors import DbmonError
from monitor_app.metrics.host_resources import sample_host
from monitor_app.posture.check import run_check as posture_check
from monitor_app.assets.reachability import apply_probe, probe_sqlite
from monitor_app.schema.check import run_check as schema_check
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, Event, MetricSample
from monitor_app.store.models.alerting import Alert
from tests.containers.conftest import containers_config, images, runner  # noqa: F401 - fixtures
from tests.containers.follow import Harness
from tests.services import missing
from tests.schema.conftest import PgScratch, add_asset, make_runtime, pg_connection

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```yaml(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.S | re.M)
# The rules the docs show, each exercised by a test below; a new documented rule needs one here.
TESTED_RULES = {"AssetDown", "RiskySchemaChange", "UnplannedRestart", "CollectorFailing", "DiskAlmostFull",
                "PostureCriticalFinding",
                # tests/docs/test_metric_rules.py
                "PoolClientsWaiting", "WraparoundNear", "WalArchivingFailing", "SettingChanged",
                # tests/docs/test_series_rule_examples.py
                "CheckoutLatencyAnomaly", "TempSpillSurge", "DatabaseOutgrowsItsVolume"}


def yaml_examples() -> list[tuple[str, str]]:
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            if "not-config" not in m.group("info"):
                found.append((f"{doc.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}", m.group("body")))
    return found


def documented_rules() -> dict:
    """Rules written in the examples (built-in ones merged in by the loader left out), by name."""
    rules = {}
    for where, body in yaml_examples():
        alerting = parse_config_text(body, where).alerting
        for rule in alerting.rules:
            if rule.name not in alerting.builtin_rule_names():
                assert rule.name not in rules, f"{rule.name} is documented twice ({where})"
                rules[rule.name] = rule
    return rules


@pytest.mark.parametrize("where, body", yaml_examples(), ids=[w for w, _ in yaml_examples()])
def test_every_yaml_example_loads_through_the_config_loader(where, body):
    config = parse_config_text(body, where)  # a ConfigError names the block and the field
    written = yaml.safe_load(body)
    assert isinstance(written, dict) and written, f"{where}: not a config mapping; mark it ```yaml not-config"
    assert config.model_dump(by_alias=True, exclude_unset=True).keys() >= written.keys()


def test_the_docs_hold_config_examples_from_every_concern():
    places = {where.split(":")[0] for where, _ in yaml_examples()}
    assert {"README.md", "docs/alerting.md", "docs/containers.md", "docs/schema.md", "docs/security.md"} <= places


def test_every_documented_rule_is_run_against_a_real_event_here():
    assert set(documented_rules()) == TESTED_RULES


def alert_operations_for(store, name: str) -> AlertOperations:
    """The documented rule alone (no built-ins, no channels), as the worker would evaluate it."""
    config: AlertingConfig = load_alerting_config({"default_rules": {"enabled": False}})
    config.rules = [documented_rules()[name]]
    return AlertOperations(store, config, "test-secret-key")


def events_of(store, *types: str) -> list[int]:
    with store.session() as s:
        return list(s.scalars(select(Event.id).where(Event.type.in_(types)).order_by(Event.id)))


def alerts(store) -> list[Alert]:
    with store.session() as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))


def sqlite_file(path: Path, script: str) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(script)
    return path


def test_asset_down_pages_when_a_real_probe_fails_and_resolves_when_it_answers(store, tmp_path):
    path = sqlite_file(tmp_path / "app.db", "CREATE TABLE t (id INTEGER)")
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    engine = alert_operations_for(store, "AssetDown")
    moved = path.rename(tmp_path / "elsewhere.db")
    with store.session() as s:
        apply_probe(s, s.get(Asset, asset_id), probe_sqlite({"path": str(path)}, 2), 60)
    assert engine.evaluate_events(events_of(store, "asset.down")).fired == 1
    [alert] = alerts(store)
    assert (alert.labels["asset"], alert.severity, alert.state) == ("app-db", "page", "firing")
    assert alert.annotations["summary"].startswith("app-db is down: ")
    moved.rename(path)
    with store.session() as s:
        apply_probe(s, s.get(Asset, asset_id), probe_sqlite({"path": str(path)}, 2), 60)
    assert engine.evaluate_events(events_of(store, "asset.up")).resolved == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def changed_schema(request, store, tmp_path, pg_database):
    """A real change set on each engine: two tables dropped (critical), one added (low)."""
    rt = make_runtime(store, tmp_path)
    tables = "CREATE TABLE orders (id integer PRIMARY KEY, total real); CREATE TABLE audit (id integer PRIMARY KEY);"
    change = "DROP TABLE orders; DROP TABLE audit; CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL)"
    if request.param == "sqlite":
        path = sqlite_file(tmp_path / "app.db", tables)
        asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
        schema_check(rt, asset_id)
        sqlite_file(path, change)
        prefix = "main"
    else:
        db = PgScratch(pg_database[1])
        db.run(tables)
        asset_id = add_asset(store, name="app-db", engine="postgresql", connection=pg_connection(pg_database[1]))
        schema_check(rt, asset_id)
        db.run(change)
        db.close()
        prefix = "public"
    assert schema_check(rt, asset_id)["changed"]
    return prefix


def test_risky_schema_change_gives_one_alert_per_risky_object(store, changed_schema):
    engine = alert_operations_for(store, "RiskySchemaChange")
    assert engine.evaluate_events(events_of(store, "schema.changed")).fired == 2
    fired = {a.labels["object"]: a for a in alerts(store)}
    assert set(fired) == {f"{changed_schema}.orders", f"{changed_schema}.audit"}
    assert fired[f"{changed_schema}.orders"].annotations["summary"] == (
        f"app-db: table {changed_schema}.orders removed (critical)")


@pytest.mark.docker
def test_unplanned_restart_fires_on_a_restart_the_restart_policy_made(sqlite_store, docker_engine, runner,  # noqa: F811
                                                                       containers_config):  # noqa: F811
    harness = Harness(sqlite_store, docker_engine, containers_config).start()
    try:
        runner.run("dbmct/postgres:16", "crashy", env={"POSTGRES_PASSWORD": "x"},
                   command=["/bin/sh", "-c", "sleep 0.3; exit 1"],
                   restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
        harness.wait_event(runner.name("crashy"), "container.unplanned_restart", timeout=60)
    finally:
        harness.stop()
    engine = alert_operations_for(sqlite_store, "UnplannedRestart")
    restarts = events_of(sqlite_store, "container.unplanned_restart")
    assert engine.evaluate_events(restarts).fired == 1  # every restart of one container: one alert
    [alert] = alerts(sqlite_store)
    assert (alert.labels["asset"], alert.labels["alertname"], alert.state) == (runner.name("crashy"), "UnplannedRestart",
                                                                              "firing")


def test_collector_failing_pages_on_a_real_failed_check_and_resolves_on_recovery(store, tmp_path):
    path = sqlite_file(tmp_path / "app.db", "CREATE TABLE t (id INTEGER)")
    good = path.read_bytes()
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    schema_check(rt, asset_id)
    path.write_bytes(b"not a database" * 100)
    for _ in range(3):
        with pytest.raises(DbmonError):
            schema_check(rt, asset_id)
    engine = alert_operations_for(store, "CollectorFailing")
    assert engine.evaluate_events(events_of(store, "schema.check_failed")).fired == 1
    [alert] = alerts(store)
    assert (alert.labels["collector"], alert.labels["asset"], alert.severity) == ("schema", "app-db", "critical")
    path.write_bytes(good)
    schema_check(rt, asset_id)
    assert engine.evaluate_events(events_of(store, "schema.check_recovered")).resolved == 1


def test_disk_almost_full_selects_the_real_disk_sample_of_the_postgresql_directory(store, tmp_path):
    directory = Path("/var/lib/postgresql")
    if not directory.exists():
        missing("/var/lib/postgresql (the PostgreSQL server's data directory)")
    host_id = add_asset(store, name="host-1", engine="sqlite", connection={})
    now = utcnow()
    # Two real samplings: the PostgreSQL directory, and a path the rule's matcher must leave out.
    samples = sample_host([directory], cpu_window=0.01) + sample_host([tmp_path], cpu_window=0.01)
    with store.session() as s:
        s.add_all(MetricSample(name=m.name, asset_id=host_id, value=m.value, labels=m.labels, at=now)
                  for m in samples)
    used = next(m.value for m in samples if m.name == "host.disk_percent" and m.labels["path"] == str(directory))
    engine = alert_operations_for(store, "DiskAlmostFull")
    assert engine.evaluate_metrics().signals == 1
    # `for: 5m`: a full disk is pending first; a disk with room opens no alert at all.
    assert [(a.labels["path"], a.state) for a in alerts(store)] == ([(str(directory), "pending")] if used >= 90 else [])


def test_posture_rule_replacement_pages_per_real_finding_of_warning_or_worse(store, tmp_path, pg_database):
    name, url = pg_database
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="appdb", engine="postgresql", connection=pg_connection(url))
    posture_check(rt, asset_id)
    db = PgScratch(url)
    db.run("GRANT CREATE ON SCHEMA public TO PUBLIC")
    db.close()
    posture_check(rt, asset_id)
    with store.session() as s:
        opened = s.scalars(select(Event).where(Event.type == "posture.finding_opened")).all()
        expected = {e.payload["finding"] for e in opened if e.severity in ("warning", "critical", "page")}
    assert "public_schema_create" in expected
    engine = alert_operations_for(store, "PostureCriticalFinding")
    assert engine.evaluate_events(events_of(store, "posture.finding_opened")).fired == len(expected)
    assert {a.labels["finding"] for a in alerts(store)} == expected
