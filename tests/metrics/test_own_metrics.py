"""dbmon's own metrics across processes: the shared directory and its once-per-deployment
emptying, values of separate and forked processes added up, hooks that never raise, and GET /metrics
of a real deployment (worker and API processes) showing what the worker's tasks and deliveries
counted. Where the hooks sit is tested in test_own_metrics_hooks.py."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor_app.platform import own_metrics
from monitor_app.store.base import utcnow
from tests.alerting.peers import HttpReceiver
from tests.harness import ROOT, wait_for
from tests.services import free_port

OWN = ("dbmon_tasks", "dbmon_task_duration_seconds", "dbmon_task_queue_lag_seconds", "dbmon_notifications",
       "dbmon_detection_seconds", "dbmon_notification_latency_seconds")


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(got: dict, name: str, **labels) -> float | None:
    return got.get((name, tuple(sorted(labels.items()))))


@pytest.fixture()
def shared_dir(tmp_path, monkeypatch):
    """A directory claimed by this test process, as `dbmon up` claims it; the environment is restored."""
    monkeypatch.setenv(own_metrics.ENV, "restored-after-the-test")
    path = tmp_path / "prometheus"
    claim = own_metrics.claim_directory(path)
    assert claim is not None
    yield path, claim
    claim.release()


# -- the shared directory ------------------------------------------------------------------------


def test_only_the_first_claim_of_a_deployment_empties_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(own_metrics.ENV, "restored-after-the-test")
    path = tmp_path / "prometheus"
    path.mkdir()
    stale = ["counter_41.db", "histogram_41.db", "gauge_livesum_7.db"]
    kept = ["notes.txt", "counter_abc.db", "dbmon.sqlite3"]
    for name in stale + kept:
        (path / name).write_bytes(b"old")
    first = own_metrics.claim_directory(path)
    assert first is not None and first.emptied and first.removed == 3
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == sorted(kept)
    assert os.environ[own_metrics.ENV] == str(path)

    (path / "counter_42.db").write_bytes(b"a live process's values")
    second = own_metrics.claim_directory(path)  # a later process of the same deployment
    assert second is not None and not second.emptied and (path / "counter_42.db").exists()
    first.release()
    third = own_metrics.claim_directory(path)  # the second still runs: still the same deployment
    assert third is not None and not third.emptied and (path / "counter_42.db").exists()
    second.release()
    third.release()
    restarted = own_metrics.claim_directory(path)  # everything stopped: a new deployment starts clean
    assert restarted is not None and restarted.emptied and not (path / "counter_42.db").exists()
    restarted.release()


def test_an_unusable_directory_leaves_values_per_process(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(own_metrics.ENV, raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, "dbmon.own_metrics"):
        assert own_metrics.claim_directory(blocker / "prometheus") is None
    assert "cannot use" in caplog.text and own_metrics.ENV not in os.environ


WRITER = """
import os, sys
from pathlib import Path
from monitor_app.platform import own_metrics
claim = own_metrics.claim_directory(Path(sys.argv[1]))
own_metrics.task_finished("metrics.host_sample", "succeeded", 0.2)  # before the fork, like a pool's parent
pid = os.fork()
if pid == 0:
    own_metrics.task_finished("metrics.host_sample", "succeeded", 0.3)
    own_metrics.task_finished("metrics.host_sample", "failed", 0.1)
    own_metrics.notification_outcome("webhook", "sent")
    os._exit(0)
os.waitpid(pid, 0)
own_metrics.mark_process_dead(pid)
print(claim.emptied)
"""


def test_values_of_separate_and_forked_processes_add_up(shared_dir):
    path, _ = shared_dir
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(own_metrics.ENV)  # each writer claims the directory itself, as `dbmon worker` does
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", WRITER, str(path)], env=env, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr  # this test holds a share
    assert len(list(path.glob("counter_*.db"))) == 4  # two writers, each with a forked child
    got = samples(own_metrics.exposition(path).decode())
    task = {"task": "metrics.host_sample"}
    # A child does not inherit its parent's count: 2 writers x (1 before the fork + 1 in the child).
    assert value(got, "dbmon_tasks_total", **task, state="succeeded") == 4
    assert value(got, "dbmon_tasks_total", **task, state="failed") == 2
    assert value(got, "dbmon_notifications_total", channel_kind="webhook", outcome="sent") == 2
    assert value(got, "dbmon_task_duration_seconds_count", **task) == 6
    assert value(got, "dbmon_task_duration_seconds_sum", **task) == pytest.approx(1.2)
    assert value(got, "dbmon_task_duration_seconds_bucket", **task, le="0.25") == 4
    assert {name for name, _ in got} <= {f"{n}{suffix}" for n in OWN for suffix in ("_total", "_sum", "_count",
                                                                                      "_bucket")}


def broken_value_file() -> bytes:
    """prometheus_client's layout (used size, padding, then length, key, padding, value, timestamp)
    with a key that is not UTF-8."""
    return struct.pack("i", 40) + bytes(4) + struct.pack("i", 4) + b"\xff\xfe\xfd\xfc" + bytes(8) + \
        struct.pack("dd", 1.0, 0.0)


def test_a_broken_value_file_costs_only_this_section(tmp_path):
    (tmp_path / "counter_5.db").write_bytes(broken_value_file())
    text = own_metrics.exposition(tmp_path).decode()
    assert text.startswith("# dbmon's own metrics are unavailable")
    assert list(text_string_to_metric_families(text)) == []


def test_without_the_directory_nothing_is_served(monkeypatch):
    monkeypatch.delenv(own_metrics.ENV, raising=False)
    own_metrics.task_finished("metrics.host_sample", "succeeded", 0.01)  # recorded in this process only
    assert own_metrics.exposition() == b""


def test_a_failing_hook_is_logged_once_and_never_raises(monkeypatch, caplog):
    monkeypatch.setattr(own_metrics, "_logged", set())

    class BrokenStore:
        def session(self):
            raise OSError("store gone")

    class FiringRow:
        kind, incident_id = "firing", 1

    with caplog.at_level(logging.WARNING, "dbmon.own_metrics"):
        for _ in range(3):
            assert own_metrics.task_finished("metrics.host_sample", "exploded", 0.1) is None
            assert own_metrics.notification_delivered(BrokenStore(), FiringRow(), "webhook", utcnow()) is None
    assert [r.getMessage().split(" failed")[0] for r in caplog.records] == [
        "dbmon's own metrics: task_finished", "dbmon's own metrics: notification_delivered"]


# -- a real deployment ---------------------------------------------------------------------------


@pytest.fixture()
def peer():
    receiver = HttpReceiver()
    yield receiver
    receiver.stop()


def test_get_metrics_adds_up_what_the_worker_processes_counted(deployment, peer):
    from monitor_app.access.api_keys import create_key
    from tests.alerting.test_workers import record_down

    port = free_port()
    deployment.env["DBMON_API_PORT"] = str(port)
    deployment.write_config(yaml.safe_dump({"alerting": {
        "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]}],
        "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": peer.url(), "timeout": 2}},
        "route": {"channels": ["ops"]}}}))
    shared = deployment.tmp / "var" / "prometheus"
    shared.mkdir(parents=True)
    (shared / "counter_1.db").write_bytes(broken_value_file())  # a previous run's (broken) values: must go
    # Single machine: the thread pool `dbmon up` runs; distributed: Celery's prefork pool children.
    deployment.start_worker("worker", *(["--with-beat-and-watcher"] if deployment.mode == "embedded" else []))
    assert not (shared / "counter_1.db").exists()

    runs = [deployment.scan("metrics.host_sample") for _ in range(3)]
    assert [r.status for r in runs] == ["done"] * 3
    assert deployment.scan("metrics.host_sample", {"unexpected": 1}).status == "failed"
    record_down(deployment.runtime, "orders-db")
    assert len(peer.wait_for(1, timeout=20)) == 1, deployment.log("worker")[-3000:]

    # Started after the worker's work: joining the running deployment must not empty the directory.
    deployment.start("api", "api")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _status(base + "/healthz") == 200, 60, interval=0.2, what="API healthy")
    with deployment.runtime.store.session() as s:
        key = create_key(s, name="scraper", role="viewer")[1]

    def scraped() -> dict | None:
        resp = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert resp.status_code == 200, resp.text
        got = samples(resp.text)
        sent = value(got, "dbmon_notifications_total", channel_kind="webhook", outcome="sent")
        return got if sent else None  # the count follows the receiver's answer by a commit

    got = wait_for(scraped, 20, interval=0.2, what="the delivery counted")
    task = {"task": "metrics.host_sample"}
    assert value(got, "dbmon_tasks_total", **task, state="succeeded") == 3
    assert value(got, "dbmon_tasks_total", **task, state="failed") == 1
    assert value(got, "dbmon_task_duration_seconds_count", **task) == 4
    assert value(got, "dbmon_task_queue_lag_seconds_count", queue="metrics") >= 4
    assert value(got, "dbmon_tasks_total", task="alerts.deliver", state="succeeded") == 1
    assert value(got, "dbmon_notifications_total", channel_kind="webhook", outcome="sent") == 1
    assert value(got, "dbmon_detection_seconds_count", stage="notified") == 1
    assert value(got, "dbmon_notification_latency_seconds_count", channel_kind="webhook") == 1
    # The monitored values are still served: the host samples the tasks took.
    assert any(name.startswith("dbmon_host") and dict(labels).get("asset_id") for name, labels in got), sorted(got)
    api_pids = {p.pid for p in _tree(deployment.procs["api"].pid)}
    writers = {int(p.stem.split("_")[-1]) for p in shared.glob("counter_*.db")}
    assert writers - api_pids, (writers, api_pids)  # the counts came from other processes' files


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0


def _tree(pid: int):
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]
