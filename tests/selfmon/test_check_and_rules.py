"""The self-check writes the `dbmon` asset's series from the heartbeat rows and the ledger, and each
built-in self-monitoring rule fires on them after its `for`, on that asset only."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from monitor_app.alerting.config import load_alerting_config, parse_duration
from monitor_app.alerting.default_rules import builtin_definitions
from monitor_app.alerting.operations import AlertOperations
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter
from monitor_app.platform.task_queues import QUEUES
from monitor_app.selfmon.check import run_check
from monitor_app.store.models import Asset, MetricSeries, TaskRun
from monitor_app.store.models.alerting import Alert
from tests.alerting.helpers import add_asset
from tests.selfmon.conftest import beat, healthy_deployment

SELFMON_RULES = ["DbmonQueueWithoutWorker", "DbmonBeatSilent", "DbmonWatchSourceDown", "DbmonQueueLagging",
                 "DbmonTasksFailing"]


@pytest.fixture()
def engine(store, clock):
    return AlertOperations(store, load_alerting_config({}), "test-secret-key", clock=clock)


def alerts(store, state: str | None = None) -> list[tuple[str, str, dict]]:
    with store.session() as s:
        found = s.scalars(select(Alert).where(Alert.state == state) if state else select(Alert))
        return sorted((a.rule, a.state, a.labels) for a in found)


def latest(store, name: str) -> dict[str, float]:
    with store.session() as s:
        return {next(iter(r.labels.values()), ""): r.last_value
                for r in s.scalars(select(MetricSeries).where(MetricSeries.name == name))}


def annotations(store) -> list[dict]:
    with store.session() as s:
        return [a.annotations for a in s.scalars(select(Alert))]


def hold(rule: str) -> float:
    return parse_duration(builtin_definitions()[rule].get("for", 0))


def test_the_check_registers_the_dbmon_asset_once_and_writes_its_series(store, rt, clock):
    healthy_deployment(store, clock())
    first = run_check(rt, clock())
    second = run_check(rt, clock.advance(30))
    assert first["healthy"] and second["healthy"] and second["problems"] == [] and second["samples"] > 20
    with store.session() as s:
        (asset,) = s.scalars(select(Asset).where(Asset.source == "dbmon")).all()
        assert (asset.name, asset.kind, asset.engine, asset.status) == ("dbmon", "service", None, "up")
        names = set(s.scalars(select(MetricSeries.name).where(MetricSeries.asset_id == asset.id)))
    assert {"dbmon.queue_depth", "dbmon.queue_oldest_seconds", "dbmon.queue_consumers", "dbmon.beat_age_seconds",
            "dbmon.watch_source_up", "dbmon.workers_alive", "dbmon.broker_up", "dbmon.queue_broker_depth"} <= names
    assert latest(store, "dbmon.queue_consumers") == dict.fromkeys(QUEUES, 1.0)
    assert latest(store, "dbmon.beat_age_seconds") == {"": 30.0}
    assert latest(store, "dbmon.watch_source_up") == {"config": 1.0, "files": 1.0}


def test_a_queue_without_a_live_worker_pages_per_queue_after_two_minutes(store, rt, clock, engine):
    decoy = add_asset(store, "dbmon")  # a monitored database that happens to share the name
    SeriesWriter(store).write([SeriesSample(decoy, "dbmon.queue_consumers", 0, clock(), {"queue": "schema"})])
    beat(store, "worker", "files@b", clock(), queues=["files"])
    healthy_deployment(store, clock())
    run_check(rt, clock())
    engine.evaluate_metrics()
    assert alerts(store) == []
    for step in (60, hold("DbmonQueueWithoutWorker")):
        clock.advance(step)
        healthy_deployment(store, clock())  # everything but the files worker keeps reporting...
        beat(store, "worker", "w1@host-a", clock(), queues=[q for q in QUEUES if q != "files"])
        result = run_check(rt, clock())
        engine.evaluate_metrics()
    assert result["problems"] == ["no live worker consumes the files queue"]
    (alert,) = alerts(store, "firing")
    assert alert[0] == "DbmonQueueWithoutWorker" and alert[2]["queue"] == "files" and alert[2]["asset"] == "dbmon"


def test_a_silent_beat_pages_and_the_check_asks_for_the_evaluation_beat_no_longer_schedules(store, rt, clock, engine):
    healthy_deployment(store, clock())
    assert run_check(rt, clock())["evaluation_requested"] is False
    clock.advance(40)
    for kind, instance, queues, detail in (("worker", "w1@host-a", QUEUES, {}),
                                           ("watcher", "watcher@host-a", (), {"leading": True, "sources": []})):
        beat(store, kind, instance, clock(), queues=queues, detail=detail)
    result = run_check(rt, clock())
    assert result["problems"] == ["beat silent for 40 s"] and result["evaluation_requested"]
    assert [sent[0] for sent in rt.sent] == ["alerts.evaluate_metrics"]
    engine.evaluate_metrics()
    (alert,) = alerts(store, "firing")
    assert alert[0] == "DbmonBeatSilent" and "not ticked for 40 s" in str(annotations(store))


def test_a_watch_source_that_stopped_pages_after_two_minutes(store, rt, clock, engine):
    healthy_deployment(store, clock())
    run_check(rt, clock())
    for step in (30, hold("DbmonWatchSourceDown")):
        clock.advance(step)
        healthy_deployment(store, clock())
        beat(store, "watch_source", "watcher@host-a/files", clock(), detail={"source": "files", "alive": False})
        run_check(rt, clock())
        engine.evaluate_metrics()
    (alert,) = alerts(store, "firing")
    assert alert[0] == "DbmonWatchSourceDown" and alert[2]["source"] == "files"


def test_a_message_waiting_over_two_minutes_pages_for_its_queue(store, rt, clock, engine):
    healthy_deployment(store, clock())
    run_id = rt.ledger.record("schema.check", {"asset_id": 1}, queue="schema")
    with store.session() as s:
        s.execute(update(TaskRun).where(TaskRun.id == run_id).values(requested_at=clock() - timedelta(seconds=150)))
    run_check(rt, clock())
    engine.evaluate_metrics()
    assert [(rule, state) for rule, state, _ in alerts(store)] == [("DbmonQueueLagging", "pending")]
    clock.advance(hold("DbmonQueueLagging"))
    healthy_deployment(store, clock())
    run_check(rt, clock())
    engine.evaluate_metrics()
    (alert,) = alerts(store, "firing")
    assert alert[0] == "DbmonQueueLagging" and alert[2]["queue"] == "schema"
    assert latest(store, "dbmon.queue_oldest_seconds")["schema"] == pytest.approx(150 + hold("DbmonQueueLagging"), abs=2)


def test_a_fifth_of_task_runs_failing_for_ten_minutes_pages(store, rt, clock, engine):
    with store.session() as s:
        for i in range(20):
            at = clock() - timedelta(seconds=60 + i)
            s.add(TaskRun(id=os.urandom(16).hex(), name="metrics.pg_fast", kwargs={}, queue="metrics",
                          status="failed" if i % 4 == 0 else "done", requested_at=at, finished_at=at))
    healthy_deployment(store, clock())
    run_check(rt, clock())
    engine.evaluate_metrics()
    assert latest(store, "dbmon.task_failure_ratio") == {"": 0.25}
    clock.advance(hold("DbmonTasksFailing"))
    healthy_deployment(store, clock())
    run_check(rt, clock())
    engine.evaluate_metrics()
    assert [a[0] for a in alerts(store, "firing")] == ["DbmonTasksFailing"]


def test_every_self_monitoring_rule_is_built_in_and_bound_to_the_dbmon_asset():
    rules = {r.name: r for r in load_alerting_config({}).rules}
    for name in SELFMON_RULES:
        assert rules[name].asset == "dbmon" and [str(m) for m in rules[name].match] == ['asset_kind="service"']
        assert rules[name].metric.startswith("dbmon.")


def test_two_first_checks_at_once_register_one_asset(store, clock):
    import threading

    from monitor_app.selfmon.series import dbmon_asset

    found = []
    with store.session() as first:
        mine = dbmon_asset(first, clock()).id  # registered, not committed yet
        other = threading.Thread(target=lambda: found.append(in_session(store, dbmon_asset, clock())))
        other.start()
        other.join(0.5)  # the second one waits on the first's insert
    other.join(30)
    assert found == [mine]
    with store.session() as s:
        assert len(s.scalars(select(Asset).where(Asset.source == "dbmon")).all()) == 1


def in_session(store, fn, *args):
    with store.session() as s:
        return fn(s, *args).id
