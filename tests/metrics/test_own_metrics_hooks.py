"""dbmon's own metrics recorded where the work happens: the task wrapper (outcomes, duration and
the wait in the ledger), the event log (observed to stored) and notification delivery to a real
HTTP receiver (sent, failed, suppressed; observed and stored to notified). This process has no
shared directory, so its values are read from prometheus_client's default registry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from monitor_app.alerting.config import load_alerting_config
from monitor_app.alerting.operations import AlertOperations
from monitor_app.errors import ProbeError
from monitor_app.platform import own_metrics
from monitor_app.platform.event_log import record_event
from monitor_app.store.base import utcnow
from monitor_app.store.models.core import Event
from tests.alerting.helpers import add_asset
from tests.alerting.peers import HttpReceiver
from workers.task_base import dbmon_task


@dbmon_task("maintenance.test_own_metrics", max_retries=3)
def failing_task(rt, key: str, failures: list[str]) -> dict:
    """Raises the listed errors, one per attempt of the run `key`, then succeeds."""
    attempt = attempts_of[key] = attempts_of.get(key, -1) + 1
    if attempt < len(failures):
        if failures[attempt] == "bug":
            raise ValueError("unexpected")
        raise ProbeError("target refused the connection")
    return {}


attempts_of: dict[str, int] = {}


def local(name: str, **labels) -> float:
    """This process's value: it has no shared directory, so its metrics are in the default registry."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_task_wrapper_counts_outcomes_and_the_wait_in_the_ledger(store, tmp_path, monkeypatch):
    import workers.task_base as task_base
    from monitor_app.config.settings import load_settings
    from monitor_app.platform.runtime import Runtime
    from monitor_app.store.models import TaskRun

    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    monkeypatch.setattr(task_base, "_runtime", rt)
    task = {"task": "maintenance.test_own_metrics"}
    before = {state: local("dbmon_tasks_total", **task, state=state) for state in own_metrics.TASK_STATES}
    lag = ("dbmon_task_queue_lag_seconds_count", "dbmon_task_queue_lag_seconds_sum")
    lag_before = [local(name, queue="maintenance") for name in lag]
    timed_before = local("dbmon_task_duration_seconds_count", **task)

    def run(failures: list[str]) -> None:
        run_id = rt.ledger.record(task["task"], {}, queue="maintenance")
        with store.session() as s:  # requested ten seconds ago: it waited that long in the queue
            s.get(TaskRun, run_id).requested_at = utcnow() - timedelta(seconds=10)
        failing_task.apply(kwargs={"key": run_id, "failures": failures}, task_id=run_id)

    run(["transient", "transient"])  # retried twice, then succeeds
    run([])
    run(["bug"])
    after = {state: local("dbmon_tasks_total", **task, state=state) - before[state] for state in before}
    assert after == {"succeeded": 2, "failed": 1, "retried": 2}
    assert local("dbmon_task_duration_seconds_count", **task) - timed_before == 5  # every attempt is timed
    # Three first starts, each ten seconds after its request; the retries' waits were backoffs, left out.
    count, waited = (local(name, queue="maintenance") - was for name, was in zip(lag, lag_before, strict=True))
    assert count == 3 and 30 <= waited < 33


def test_an_event_with_an_observation_time_records_how_long_storing_took(store):
    before = local("dbmon_detection_seconds_count", stage="stored"), local("dbmon_detection_seconds_sum",
                                                                           stage="stored")
    with store.session() as s:
        record_event(s, type="asset.down", observed_at=utcnow() - timedelta(seconds=4))
        record_event(s, type="asset.down")  # the recorder observed it: nothing to measure
    assert local("dbmon_detection_seconds_count", stage="stored") - before[0] == 1
    assert 4 <= local("dbmon_detection_seconds_sum", stage="stored") - before[1] < 5


@pytest.fixture()
def receiver():
    peer = HttpReceiver()
    yield peer
    peer.stop()


def engine_for(store, url: str, now: list, **channel) -> AlertOperations:
    config = {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]}],
              "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": url, "timeout": 2,
                                   **channel}},
              "route": {"channels": ["ops"]}}
    return AlertOperations(store, load_alerting_config(config), "test-secret-key", clock=lambda: now[0])


def down_event(store, name: str, observed, detected) -> int:
    asset = add_asset(store, name)
    with store.session() as s:
        event = Event(type="asset.down", severity="critical", asset_id=asset, summary="down", payload={},
                      observed_at=observed, detected_at=detected)
        s.add(event)
        s.flush()
        return event.id


def test_a_webhook_delivery_counts_sent_and_records_the_detection_latency(store, receiver):
    t0 = utcnow()
    now = [t0]
    engine = engine_for(store, receiver.url(), now)
    sent = ("dbmon_notifications_total", {"channel_kind": "webhook", "outcome": "sent"})
    failed = ("dbmon_notifications_total", {"channel_kind": "webhook", "outcome": "failed"})
    watched = {"sent": sent, "failed": failed,
               "notified": ("dbmon_detection_seconds_sum", {"stage": "notified"}),
               "notified_count": ("dbmon_detection_seconds_count", {"stage": "notified"}),
               "within_10s": ("dbmon_detection_seconds_bucket", {"stage": "notified", "le": "10.0"}),
               "within_5s": ("dbmon_detection_seconds_bucket", {"stage": "notified", "le": "5.0"}),
               "after_stored": ("dbmon_notification_latency_seconds_sum", {"channel_kind": "webhook"})}
    before = {k: local(name, **labels) for k, (name, labels) in watched.items()}

    def delta() -> dict:
        return {k: local(name, **labels) - before[k] for k, (name, labels) in watched.items()}

    # Observed 3 s before it was stored, delivered 7 s after it was stored.
    outcome = engine.evaluate_events([down_event(store, "orders-db", t0 - timedelta(seconds=3), t0)])
    now[0] = t0 + timedelta(seconds=7)
    assert [engine.deliver(i)["outcome"] for i in outcome.deliver] == ["sent"]
    assert len(receiver.wait_for(1)) == 1
    assert delta() == {"sent": 1, "failed": 0, "notified": pytest.approx(10), "notified_count": 1,
                       "within_10s": 1, "within_5s": 0, "after_stored": pytest.approx(7)}

    receiver.mode = "fail"  # the receiver answers 503: a failed attempt, retried later; no latency
    outcome = engine.evaluate_events([down_event(store, "billing-db", now[0], now[0])])
    assert [engine.deliver(i)["outcome"] for i in outcome.deliver] == ["retry"]
    assert delta()["failed"] == 1 and delta()["notified_count"] == 1


def test_a_rate_limited_notification_counts_as_suppressed(store, receiver):
    now = [utcnow()]
    engine = engine_for(store, receiver.url(), now, rate_limit={"per_minute": 1, "burst": 1})
    before = {o: local("dbmon_notifications_total", channel_kind="webhook", outcome=o) for o in ("sent", "suppressed")}
    outcomes = []
    for name in ("db1", "db2"):
        outcomes += [engine.deliver(i)["outcome"]
                     for i in engine.evaluate_events([down_event(store, name, now[0], now[0])]).deliver]
    assert outcomes == ["sent", "suppressed"]
    assert {o: local("dbmon_notifications_total", channel_kind="webhook", outcome=o) - before[o]
            for o in before} == {"sent": 1, "suppressed": 1}
