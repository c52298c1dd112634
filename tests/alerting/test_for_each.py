"""`for_each`: one alert per item of a payload list, fed by real schema changes."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select

from monitor_app.alerting.config import load_alerting_config
from monitor_app.errors import ConfigError, DbmonError
from monitor_app.schema.check import run_check
from monitor_app.store.models import Event
from monitor_app.store.models.alerting import Alert
from tests.schema.conftest import add_asset, make_runtime

PER_OBJECT = {"name": "RiskySchemaChange", "kind": "event", "event_types": ["schema.changed"], "for_each": "changes",
              "min_risk": "high", "label_from_payload": ["object"], "resolve_after": "1h",
              "annotations": {"summary": "{{ item.object }} {{ item.action }} ({{ item.risk }})"}}


def errors_of(rule: dict) -> dict:
    with pytest.raises(ConfigError) as info:
        load_alerting_config({"rules": [rule]})
    return dict(info.value.errors)


def test_it_names_the_field_when_for_each_has_no_label_to_tell_items_apart():
    errs = errors_of({**PER_OBJECT, "label_from_payload": []})
    assert list(errs) == ["alerting.rules[0].label_from_payload"]
    assert "for_each needs at least one key" in errs["alerting.rules[0].label_from_payload"]
    omitted = {k: v for k, v in PER_OBJECT.items() if k != "label_from_payload"}
    assert list(errors_of(omitted)) == ["alerting.rules[0].label_from_payload"]


def test_it_names_the_field_of_a_for_each_that_is_not_a_payload_path():
    errs = errors_of({**PER_OBJECT, "for_each": "changes[*]"})
    assert list(errs) == ["alerting.rules[0].for_each"]
    assert "is not a payload path" in errs["alerting.rules[0].for_each"]


def sqlite_asset(store, tmp_path) -> tuple:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL, note TEXT);"
                         "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);"
                         "CREATE TABLE audit (id INTEGER PRIMARY KEY)")
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    run_check(rt, asset_id)  # the baseline
    return rt, asset_id, path


def test_one_real_schema_change_set_gives_one_alert_per_risky_object(store, tmp_path, clock, make_engine):
    rt, asset_id, path = sqlite_asset(store, tmp_path)
    with sqlite3.connect(path) as db:
        # Two removals (critical) and one addition (low) in one change set.
        db.executescript("DROP TABLE orders; DROP TABLE audit; CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, at TEXT)")
    outcome = run_check(rt, asset_id)
    assert outcome["changed"] and outcome["change_count"] == 3
    with store.session() as s:
        [event] = s.scalars(select(Event).where(Event.type == "schema.changed")).all()
        assert {(c["object"], c["risk"]) for c in event.payload["changes"]} == {
            ("main.orders", "critical"), ("main.audit", "critical"), ("main.notes", "low")}
        event_id = event.id

    engine = make_engine({"rules": [PER_OBJECT]})
    assert engine.evaluate_events([event_id]).fired == 2
    with store.session() as s:
        fired = {a.labels["object"]: a for a in s.scalars(select(Alert))}
    assert set(fired) == {"main.orders", "main.audit"}
    assert fired["main.orders"].annotations["summary"] == "main.orders removed (critical)"
    assert all(a.labels["asset"] == "app-db" for a in fired.values())
    assert engine.evaluate_events([event_id]).fired == 0  # the same event again changes nothing


def test_an_event_without_the_list_gives_no_alert(store, tmp_path, clock, make_engine):
    rt, asset_id, path = sqlite_asset(store, tmp_path)
    path.write_bytes(b"this is not a database any more")
    with pytest.raises(DbmonError, match="cannot read SQLite file"):
        run_check(rt, asset_id)
    with store.session() as s:
        stored = {e.id: e.type for e in s.scalars(select(Event))}
    assert set(stored.values()) == {"schema.check_failed"}  # the failed check is an event ...
    ids = list(stored)
    engine = make_engine({"rules": [{**PER_OBJECT, "event_types": ["schema.*"], "min_risk": None}]})
    assert engine.evaluate_events(ids).signals == 0  # ... but carries no `changes` to fan out over
