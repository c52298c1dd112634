"""dbmon watching itself with real `dbmon worker`, `dbmon beat` and `dbmon watcher` processes, in
both modes: their rows appear; a SIGKILLed worker leaves its queue without consumers, its tasks
waiting ever longer, the rule firing after its `for` and the dead-man pings stopping; a killed beat
is stood in for by the watcher so its rule still fires; a killed watcher takes its sources down."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from monitor_app.platform.task_queues import QUEUES
from monitor_app.selfmon.snapshot import take_snapshot
from monitor_app.store.models.alerting import Alert
from tests.harness import Deployment, wait_for

FAST_SELFMON = {"DBMON_SELFMON_HEARTBEAT_INTERVAL": "0.5", "DBMON_SELFMON_CHECK_INTERVAL": "1",
                "DBMON_ALERT_METRICS_INTERVAL": "1", "DBMON_DEADMAN_INTERVAL": "1",
                "DBMON_DEADMAN_ALLOW_PRIVATE": "true"}
# The rules as shipped, with the holds shortened so the test waits seconds, not minutes.
CONFIG = """assets: []
alerting:
  default_rules:
    override:
      DbmonQueueWithoutWorker: {for: 2s}
      DbmonBeatSilent: {value: 3}
"""


def snapshot(d):
    return take_snapshot(d.runtime.store, d.runtime.settings)


def firing(d, rule: str) -> list[dict]:
    with d.runtime.store.session() as s:
        return [a.labels for a in s.scalars(select(Alert).where(Alert.rule == rule, Alert.state == "firing"))]


def test_dbmon_notices_its_own_processes_dying(deployment, receiver):
    d = deployment
    d.env.update(FAST_SELFMON, DBMON_DEADMAN_URL=receiver.url())
    d.write_config(CONFIG)
    d.start_worker("main", "-Q", ",".join(q for q in QUEUES if q != "files"))
    d.start_worker("files", "-Q", "files")
    d.start("beat", "beat")
    d.start("watcher", "watcher", "--source", "config")

    healthy = wait_for(lambda: (s := snapshot(d)).healthy and s, 60, 0.2, "every part reporting")
    workers = {c.instance: c.queues for c in healthy.components if c.kind == "worker"}
    assert sorted(workers.values()) == [("alerts", "discovery", "maintenance", "metrics", "posture", "schema"),
                                        ("files",)]
    assert healthy.assessment.watcher["ok"] and list(healthy.assessment.watch_sources) == ["config"]
    wait_for(lambda: len(receiver.pings) >= 2, 30, 0.2, "dead-man pings while healthy")

    # A worker dies the hard way: its queue has no consumer, work for it waits, the rule fires.
    d.kill("files")
    wait_for(lambda: snapshot(d).queues["files"].consumers == 0, 15, 0.2, "files queue without consumer")
    d.runtime.dispatch("files.sync_watches", {}, requested_by="test")
    first = snapshot(d).queues["files"]
    time.sleep(1.2)
    later = snapshot(d).queues["files"]
    assert later.waiting >= 1 and later.broker_depth >= 1 and later.oldest_seconds >= first.oldest_seconds + 1
    wait_for(lambda: firing(d, "DbmonQueueWithoutWorker"), 30, 0.3, "DbmonQueueWithoutWorker firing")
    assert [labels["queue"] for labels in firing(d, "DbmonQueueWithoutWorker")] == ["files"]
    # The pings stop: the checks since the kill found dbmon unhealthy (one already under way may finish).
    time.sleep(1.5)
    pinged = len(receiver.pings)
    time.sleep(3)
    assert len(receiver.pings) == pinged

    # Beat dies: its age grows, and the watcher sends the check and the evaluation in its place.
    d.kill("beat")
    silent = wait_for(lambda: not (s := snapshot(d)).assessment.beat["ok"] and s, 15, 0.2, "beat silent")
    time.sleep(1)
    assert snapshot(d).assessment.beat_age_seconds > silent.assessment.beat_age_seconds
    wait_for(lambda: firing(d, "DbmonBeatSilent"), 40, 0.3, "DbmonBeatSilent firing without beat")

    # The watcher dies: its source is down with it.
    d.kill("watcher")
    down = wait_for(lambda: not (s := snapshot(d)).assessment.watch_sources["config"]["ok"] and s, 15, 0.2,
                    "config source down")
    assert "watch source config is down" in down.problems and not down.assessment.watcher["ok"]


@pytest.mark.slow
@pytest.mark.deployment
def test_the_single_process_deployment_reports_its_embedded_beat_and_watcher(tmp_path):
    d = Deployment("embedded", tmp_path)
    try:
        d.migrate()
        d.env.update(FAST_SELFMON)
        d.write_config("assets: []\n")
        d.start_worker("all", "--with-beat-and-watcher")
        healthy = wait_for(lambda: (s := snapshot(d)).healthy and s, 60, 0.2, "worker, beat and watcher reporting")
        assert {c.kind for c in healthy.components} >= {"worker", "beat", "watcher", "watch_source"}
        assert len({c.pid for c in healthy.components}) == 1  # one process
    finally:
        d.close()
