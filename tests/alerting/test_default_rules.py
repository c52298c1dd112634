"""The built-in rule pack: merged under the user's rules, switchable off and overridable by name."""

from __future__ import annotations

import random
import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
from pydantic import TypeAdapter
from sqlalchemy import select

from monitor_app.alerting.config import Rule, load_alerting_config, parse_duration
from monitor_app.alerting.default_rules import PACK, builtin_definitions
from monitor_app.alerting.operations import AlertOperations
from monitor_app.config.declarative import parse_config
from monitor_app.errors import ConfigError
from monitor_app.metrics import pg_fast, pg_slow
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter
from monitor_app.store.models import MetricSeries
from monitor_app.store.models.alerting import Alert
from tests.alerting.helpers import add_asset, add_event, add_sample
from tests.schema.conftest import add_asset as schema_add_asset
from tests.schema.conftest import make_runtime, pg_connection

PACK_RULE = "PostureCriticalFinding"


def names(cfg) -> list[str]:
    return [r.name for r in cfg.rules]


def test_the_pack_is_on_by_default_and_marked_as_built_in():
    cfg = load_alerting_config({})
    assert PACK_RULE in names(cfg)
    assert PACK_RULE in cfg.builtin_rule_names()


def test_it_is_switched_off_by_name_or_altogether():
    assert PACK_RULE not in names(load_alerting_config({"default_rules": {"disable": [PACK_RULE]}}))
    assert names(load_alerting_config({"default_rules": {"enabled": False}})) == []


def test_a_user_rule_of_the_same_name_replaces_it():
    cfg = load_alerting_config({"rules": [{"name": PACK_RULE, "kind": "event", "event_types": ["posture.*"],
                                           "severity": "info"}]})
    (rule,) = [r for r in cfg.rules if r.name == PACK_RULE]
    assert rule.severity == "info" and rule.event_types == ["posture.*"]
    assert PACK_RULE not in cfg.builtin_rule_names()


def test_single_fields_are_overridden_and_the_rest_kept():
    cfg = load_alerting_config({"default_rules": {"override": {PACK_RULE: {"severity": "page",
                                                                           "match": ["env=prod"]}}}})
    (rule,) = [r for r in cfg.rules if r.name == PACK_RULE]
    assert rule.severity == "page" and [str(m) for m in rule.match] == ['env="prod"']
    assert rule.event_types == ["posture.finding_opened"]


def test_user_rule_errors_keep_their_paths():
    with pytest.raises(ConfigError) as info:
        load_alerting_config({"rules": [{"name": "A", "kind": "event", "event_types": ["x"]},
                                        {"name": "A", "kind": "event", "event_types": ["y"]}]})
    assert "duplicate rule name" in dict(info.value.errors)["alerting.rules[1].name"]


@pytest.mark.parametrize("section, field, text", [
    ({"disable": ["NoSuchRule"]}, "alerting.default_rules.disable[0]", "no built-in rule named 'NoSuchRule'"),
    ({"override": {"NoSuchRule": {"severity": "page"}}}, "alerting.default_rules.override.NoSuchRule",
     "no built-in rule"),
    ({"override": {PACK_RULE: {"severity": "loud"}}}, f"alerting.default_rules.override.{PACK_RULE}.severity",
     "Input should be"),
    ({"override": {PACK_RULE: {"name": "Other"}}}, f"alerting.default_rules.override.{PACK_RULE}.name",
     "cannot be overridden"),
    ({"enabled": "maybe"}, "alerting.default_rules.enabled", "valid boolean"),
])
def test_bad_sections_name_the_field(section, field, text):
    with pytest.raises(ConfigError) as info:
        parse_config({"alerting": {"default_rules": section}})
    errors = dict(info.value.errors)
    assert field in errors, errors
    assert text in errors[field]


def test_a_critical_posture_finding_pages_and_its_resolution_clears_it(store, clock, make_engine):
    engine = make_engine({})
    db = add_asset(store, "orders-db")
    warning = add_event(store, "posture.finding_opened", db, clock(), severity="warning",
                        payload={"finding": "public_schema_create"})
    critical = add_event(store, "posture.finding_opened", db, clock(), severity="critical",
                         payload={"finding": "hba_trust_remote"}, summary="orders-db: trust from other hosts")
    outcome = engine.evaluate_events([warning, critical])
    assert outcome.fired == 1
    with store.session() as s:
        (alert,) = s.scalars(select(Alert)).all()
        assert alert.rule == PACK_RULE and alert.state == "firing"
        assert alert.labels["finding"] == "hba_trust_remote" and alert.labels["asset"] == "orders-db"
        assert alert.severity == "critical"
    clock.advance(60)
    resolved = add_event(store, "posture.finding_resolved", db, clock(), severity="info",
                         payload={"finding": "hba_trust_remote"})
    assert engine.evaluate_events([resolved]).resolved == 1


# -- the pack itself -----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PACK_NAMES = list(builtin_definitions())


def test_every_built_in_rule_validates_and_says_what_to_check():
    for name, definition in builtin_definitions().items():
        rule = TypeAdapter(Rule).validate_python(definition)
        assert re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+", name), name
        assert "severity" in definition, name
        assert {"summary", "description"} <= set(rule.annotations), name
    cfg = load_alerting_config({})
    assert cfg.builtin_rule_names() == set(PACK_NAMES)


def test_every_built_in_rule_carries_a_comment_saying_why_it_exists():
    lines = PACK.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("- name: ") and line != f"- name: {PACK_RULE}":
            assert lines[i - 1].startswith("#"), f"{line}: no comment above it"


def built_in_rules_table() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "alerting.md").read_text()
    section = text.split("### Built-in rules", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([^`]+)`", row).group(1): [c.strip() for c in row.strip("|").split("|")] for row in rows}


def test_every_built_in_rule_is_in_the_docs_table_with_its_kind_and_severity():
    table = built_in_rules_table()
    assert list(table) == PACK_NAMES
    for name, definition in builtin_definitions().items():
        _, kind, _, severity, why = table[name]
        assert kind == definition["kind"] and severity == definition["severity"] and why, name


def documented_metrics() -> set[str]:
    """Metric names in docs/metrics.md's tables; `pg.<counter>_per_second` rows expand to the
    counters they list."""
    names = set()
    for row in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        if not row.startswith("|"):
            continue
        tokens = re.findall(r"`([^`]+)`", row)
        names.update(tokens)
        for pattern in (t for t in tokens if "<counter>" in t):
            names.update(pattern.replace("<counter>", t) for t in tokens if re.fullmatch(r"[a-z_]+", t))
    return names


def pack_metrics() -> set[str]:
    found = set()
    for rule in load_alerting_config({}).rules:
        found.update([rule.metric] if hasattr(rule, "metric") else [s.metric for s in getattr(rule, "series", [])])
    return found


def test_every_metric_a_built_in_rule_reads_is_documented():
    assert pack_metrics() - documented_metrics() == set()


# Series a lone PostgreSQL 13+ primary without data checksums, standbys, slots or
# pg_stat_statements does not have: set up elsewhere (tests/metrics), not on the shared server.
NEEDS_SETUP = {"pg.checksum_failures", "pg.replication_lag_seconds", "pg.slot_active", "pg.slot_retained_wal_bytes",
               "pg.statement_mean_ms"}


def test_the_collectors_write_the_pg_series_the_pack_reads_and_a_real_deadlock_fires_its_rule(sqlite_store, tmp_path,
                                                                                              pg_database):
    _, url = pg_database
    rt = make_runtime(sqlite_store, tmp_path)
    asset_id = schema_add_asset(sqlite_store, name="orders-db", engine="postgresql", connection=pg_connection(url))
    engine = AlertOperations(sqlite_store, load_alerting_config({}), "test-secret-key")
    try:
        pg_fast.run_poll(rt, asset_id)
        deadlock(url)
        deadline = time.monotonic() + 20
        while not firing(sqlite_store, "DeadlocksDetected") and time.monotonic() < deadline:
            time.sleep(0.5)  # a backend hands its statistics over within seconds, not at once
            pg_fast.run_poll(rt, asset_id)
            engine.evaluate_metrics()
        pg_slow.run_poll(rt, asset_id)
    finally:
        rt.pg_sessions.close()
    (alert,) = firing(sqlite_store, "DeadlocksDetected")
    assert alert.labels["asset"] == "orders-db" and "deadlock(s) in the last poll interval" in alert.annotations["summary"]
    with sqlite_store.session() as s:
        written = set(s.scalars(select(MetricSeries.name).where(MetricSeries.asset_id == asset_id)))
    wanted = {m for m in pack_metrics() if m.startswith("pg.")}
    assert wanted - NEEDS_SETUP <= written
    assert NEEDS_SETUP <= wanted


def deadlock(url: str) -> None:
    """Two sessions each holding a row the other one wants: PostgreSQL aborts one of them."""
    first, second = psycopg2.connect(url), psycopg2.connect(url)
    try:
        with first.cursor() as cur:
            cur.execute("CREATE TABLE pair (id int PRIMARY KEY); INSERT INTO pair VALUES (1), (2)")
        first.commit()
        for conn, row in ((first, 1), (second, 2)):
            with conn.cursor() as cur:
                cur.execute("SET deadlock_timeout = '50ms'")
                cur.execute("UPDATE pair SET id = id WHERE id = %s", (row,))
        errors = []

        def take(conn, row):
            try:
                with conn.cursor() as cur:
                    cur.execute("UPDATE pair SET id = id WHERE id = %s", (row,))
            except psycopg2.errors.DeadlockDetected as exc:
                errors.append(exc)
            conn.rollback()

        waiter = threading.Thread(target=take, args=(first, 2))
        waiter.start()
        time.sleep(0.2)
        take(second, 1)
        waiter.join(timeout=10)
        assert len(errors) == 1
    finally:
        first.close()
        second.close()


# -- each rule on its own signal, with nothing configured ----------------------------------

def firing(store, rule: str) -> list[Alert]:
    with store.session() as s:
        return list(s.scalars(select(Alert).where(Alert.rule == rule, Alert.state == "firing")))


def active_rules(store) -> set[str]:
    with store.session() as s:
        return set(s.scalars(select(Alert.rule).where(Alert.state.in_(("pending", "firing")))))


def write(store, asset_id: int, metric: str, value: float, at, labels: dict | None = None) -> None:
    """As the collectors store it: host samples as per-sample rows, the rest in the series store."""
    if metric.startswith("host."):
        add_sample(store, metric, asset_id, value, at, labels)
    else:
        SeriesWriter(store).write([SeriesSample(asset_id, metric, value, at, labels or {})])


GIB = 1 << 30


@pytest.mark.parametrize("rule, metric, normal, breach, labels, also", [
    ("DeadlocksDetected", "pg.deadlocks_in_interval", 0, 2, {}, set()),
    ("DataChecksumFailures", "pg.checksum_failures", 0, 1, {}, set()),
    ("WraparoundHalfway", "pg.datfrozenxid_age", 180_000_000, 1_200_000_000, {}, set()),
    ("WraparoundFailsafe", "pg.datfrozenxid_age", 180_000_000, 1_700_000_000, {}, {"WraparoundHalfway"}),
    ("ReplicationLagHigh", "pg.replication_lag_seconds", 4, 900, {"standby": "replica-1"}, set()),
    ("ReplicationSlotInactive", "pg.slot_active", 1, 0, {"slot": "cdc", "type": "logical"}, set()),
    ("ReplicationSlotRetainingWal", "pg.slot_retained_wal_bytes", 0.2 * GIB, 40 * GIB,
     {"slot": "cdc", "type": "logical"}, set()),
    ("IdleInTransactionTooLong", "pg.idle_in_transaction_oldest_seconds", 12, 1800, {}, set()),
    ("ConnectionsNearMax", "pg.connections_used_ratio", 0.4, 0.93, {}, set()),
    ("DiskAlmostFull", "host.disk_percent", 61, 96, {"path": "/var/lib/postgresql"}, set()),
    ("PoolClientsWaiting", "pgbouncer.clients_waiting_total", 0, 7, {}, set()),
])
def test_a_threshold_rule_of_the_pack_fires_on_a_breach_and_not_on_a_normal_value(store, clock, make_engine, rule,
                                                                                  metric, normal, breach, labels, also):
    engine = make_engine({})
    definition = builtin_definitions()[rule]
    assert definition["metric"] == metric
    hold = parse_duration(definition.get("for", 0))
    db = add_asset(store, "orders-db")
    write(store, db, metric, normal, clock(), labels)
    engine.evaluate_metrics()
    assert active_rules(store) == set()
    clock.advance(60)
    write(store, db, metric, breach, clock(), labels)
    engine.evaluate_metrics()
    if hold:
        assert firing(store, rule) == []  # pending for its `for`
        clock.advance(hold)
        write(store, db, metric, breach, clock(), labels)
        engine.evaluate_metrics()
    (alert,) = firing(store, rule)
    assert active_rules(store) == {rule} | also
    assert alert.severity == definition["severity"] and alert.labels.items() >= labels.items()
    assert "orders-db" in alert.annotations["summary"] and "template error" not in str(alert.annotations)


def test_a_slow_tier_value_holds_its_alert_between_polls(store, clock, make_engine):
    engine = make_engine({})
    db = add_asset(store, "orders-db")
    write(store, db, "pg.datfrozenxid_age", 1_300_000_000, clock())
    assert engine.evaluate_metrics().fired == 1
    for _ in range(4):  # the slow tier writes every 10 minutes: no sample in between
        clock.advance(150)
        assert engine.evaluate_metrics().resolved == 0
    assert firing(store, "WraparoundHalfway")
    assert "61 % of the way to wraparound" in firing(store, "WraparoundHalfway")[0].annotations["summary"]


@pytest.mark.parametrize("rule, fires, normal, clears", [
    ("AssetDown", ("asset.down", "critical", {"source": "config"}, "orders-db is unreachable: connection refused"),
     ("asset.registered", "info", {"source": "config"}, "orders-db registered"),
     ("asset.up", "info", {"source": "config"}, "orders-db answers")),
    ("ContainerOomKilled", ("container.oom", "critical", {}, "orders-db ran out of memory (OOM)"),
     ("container.die", "warning", {"exit_code": 1, "planned": False, "oom_killed": False},
      "orders-db exited with code 1 (unplanned)"), None),
    ("UnplannedRestart", ("container.unplanned_restart", "warning", {"restart_count": 2, "previous": 1},
                          "orders-db was restarted by its restart policy (restart count 2)"),
     ("container.start", "info", {}, "orders-db started"), None),
    ("RiskySchemaChange", ("schema.changed", "page", {"change_set_id": 7, "from_version": 3, "to_version": 4,
                                                      "max_risk": "critical", "changes": [
                                                          {"object": "public.orders", "risk": "critical"}]},
                           "orders-db: table public.orders removed (max risk critical)"),
     ("schema.changed", "critical", {"change_set_id": 6, "from_version": 2, "to_version": 3, "max_risk": "high",
                                     "changes": [{"object": "public.orders.total", "risk": "high"}]},
      "orders-db: column public.orders.total type changed (max risk high)"), None),
])
def test_an_event_rule_of_the_pack_fires_on_its_event_and_not_on_a_routine_one(store, clock, make_engine, rule, fires,
                                                                                normal, clears):
    engine = make_engine({})
    definition = builtin_definitions()[rule]
    db = add_asset(store, "orders-db")
    kind, severity, payload, summary = normal
    assert engine.evaluate_events([add_event(store, kind, db, clock(), severity, payload, summary)]).fired == 0
    assert active_rules(store) == set()
    kind, severity, payload, summary = fires
    assert engine.evaluate_events([add_event(store, kind, db, clock(), severity, payload, summary)]).fired == 1
    (alert,) = firing(store, rule)
    assert active_rules(store) == {rule}
    assert alert.severity == definition["severity"] and summary in alert.annotations["summary"]
    assert "template error" not in str(alert.annotations)
    clock.advance(60)
    if clears:
        kind, severity, payload, summary = clears
        assert engine.evaluate_events([add_event(store, kind, db, clock(), severity, payload, summary)]).resolved == 1
    else:
        clock.advance(parse_duration(definition["resolve_after"]))
        assert engine.sweep().resolved == 1


def test_an_oom_kill_reported_twice_by_the_engine_is_one_alert(store, clock, make_engine):
    engine = make_engine({})
    db = add_asset(store, "orders-db")
    oom = add_event(store, "container.oom", db, clock(), "critical", {}, "orders-db ran out of memory (OOM)")
    died = add_event(store, "container.die", db, clock(), "critical", {"exit_code": 137, "planned": False,
                                                                       "oom_killed": True},
                     "orders-db exited with code 137 (killed for running out of memory)")
    assert engine.evaluate_events([oom, died]).fired == 1
    (alert,) = firing(store, "ContainerOomKilled")
    assert alert.fire_count == 2


# -- switching one off, changing one -------------------------------------------------------

def test_a_new_rule_is_switched_off_or_changed_by_name(store, clock, make_engine):
    db = add_asset(store, "orders-db")
    write(store, db, "pg.deadlocks_in_interval", 3, clock())
    write(store, db, "pg.connections_used_ratio", 0.9, clock())
    quiet = make_engine({"default_rules": {"disable": ["DeadlocksDetected"],
                                           "override": {"ConnectionsNearMax": {"value": 0.95, "for": "0s"}}}})
    (rule,) = [r for r in quiet.cfg.rules if r.name == "ConnectionsNearMax"]
    assert rule.metric == "pg.connections_used_ratio" and rule.severity == "warning"  # the rest kept
    assert "DeadlocksDetected" not in {r.name for r in quiet.cfg.rules}
    assert quiet.evaluate_metrics().fired == 0 and active_rules(store) == set()
    clock.advance(30)
    write(store, db, "pg.connections_used_ratio", 0.97, clock())
    write(store, db, "pg.deadlocks_in_interval", 3, clock())
    assert quiet.evaluate_metrics().fired == 1 and active_rules(store) == {"ConnectionsNearMax"}


# -- the rules that judge a series by its history --------------------------------------------

def write_minutes(store, asset_id: int, name: str, end, minutes: int, value, labels: dict | None = None) -> None:
    """One sample a minute for `minutes` minutes up to `end`; `value(i)` for minute i (0 = oldest)."""
    start = end - timedelta(minutes=minutes)
    SeriesWriter(store).write([SeriesSample(asset_id, name, value(i), start + timedelta(minutes=i), labels or {})
                               for i in range(minutes)])


def test_disk_full_soon_warns_a_day_ahead_per_file_system(store, clock, make_engine):
    engine = make_engine({})
    host = add_asset(store, "db-host", kind="host")
    hours = 30
    # /data: 20 % to 80 % in 30 h, 2 % an hour: full in about 10 h. /backup: full in about 5 days.
    write_minutes(store, host, "host.disk_percent", clock(), hours * 60, lambda i: 20 + 2 * i / 60, {"path": "/data"})
    write_minutes(store, host, "host.disk_percent", clock(), hours * 60, lambda i: 55 + 0.3 * i / 60,
                  {"path": "/backup"})
    assert engine.evaluate_metrics().fired == 1
    (alert,) = firing(store, "DiskFullSoon")
    assert alert.labels["path"] == "/data" and alert.severity == "critical"
    assert 8 < float(alert.annotations["hours_to_threshold"]) < 12
    assert alert.annotations["summary"].startswith("/data on db-host is 80.0 % full and fills up in about ")


def test_a_load_change_moving_tps_and_wal_together_is_one_workload_alert(store, clock, make_engine):
    rng = random.Random(17)
    engine = make_engine({})
    db = add_asset(store, "orders-db")
    levels = {"pg.transactions_per_second": (300, 900), "pg.wal_bytes_per_second": (400_000, 2_000_000),
              "pg.cache_hit_ratio": (0.99, 0.99), "pg.connections": (40, 42)}
    for name, (before, _) in levels.items():
        write_minutes(store, db, name, clock(), 3 * 60, lambda i, lv=before: lv * (1 + rng.gauss(0, 0.005)))
    assert engine.evaluate_metrics().fired == 0
    fired = 0
    for _ in range(13):  # `for: 10m`: most of ten minutes off the baseline
        nxt = clock() + timedelta(minutes=1)
        for name, (_, after) in levels.items():
            write_minutes(store, db, name, nxt, 1, lambda i, lv=after: lv * (1 + rng.gauss(0, 0.005)))
        clock.advance(60)
        fired += engine.evaluate_metrics().fired
    assert fired == 1
    (alert,) = firing(store, "WorkloadAnomaly")
    assert active_rules(store) == {"WorkloadAnomaly"} and "metric" not in alert.labels
    series = alert.annotations["series"]
    assert "pg.transactions_per_second" in series and "pg.wal_bytes_per_second" in series
    assert "pg.cache_hit_ratio" not in series and "pg.connections" not in series  # 2 more: under min_effect
    assert alert.annotations["summary"].startswith("orders-db: 2 series anomalous")
