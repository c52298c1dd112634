"""Backlog and lag per queue from the ledger and from each real broker (the filesystem broker's
files, a Redis server's lists), and the recent task failure ratio from the ledger."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from sqlalchemy import update

from monitor_app.config.settings import load_settings
from monitor_app.platform.task_ledger import Ledger
from monitor_app.selfmon.failures import MIN_FINISHED, failure_rate
from monitor_app.selfmon.queues import broker_queues, ledger_queues
from monitor_app.selfmon.snapshot import take_snapshot
from monitor_app.store.base import utcnow
from monitor_app.store.models import TaskRun
from tests.harness import RedisServer


def send(settings, *names_and_queues):
    from workers.celery_app import make_celery

    app = make_celery(settings)
    try:
        for name, queue in names_and_queues:
            app.send_task(name, kwargs={}, queue=queue, routing_key=queue)
    finally:
        app.close()


def test_the_ledger_counts_runs_never_started_apart_from_retries(store):
    ledger = Ledger(store)
    old = ledger.record("schema.check", {"asset_id": 1}, queue="schema")
    ledger.record("schema.check", {"asset_id": 2}, queue="schema")
    started = ledger.record("files.rescan_due", {}, queue="files")
    retried = ledger.record("files.rescan_due", {}, queue="files")
    for run_id in (started, retried):
        assert ledger.claim(run_id, name="files.rescan_due", kwargs={}, queue="files")
    ledger.requeue(retried, "OperationalError: store busy", countdown=30)
    with store.session() as s:
        s.execute(update(TaskRun).where(TaskRun.id == old).values(requested_at=utcnow() - timedelta(seconds=200)))
        found = ledger_queues(s)
    assert (found["schema"].waiting, found["schema"].retrying) == (2, 0)
    assert 199 < (utcnow() - found["schema"].oldest_requested_at).total_seconds() < 210
    assert (found["files"].waiting, found["files"].retrying, found["files"].oldest_requested_at) == (0, 1, None)
    assert found["alerts"].waiting == 0


def test_the_filesystem_broker_counts_message_files_and_dates_the_oldest(sqlite_store, tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "var", database_url=sqlite_store.url, secret_key="k")
    send(settings, ("files.rescan_due", "files"), ("files.rescan_due", "files"), ("alerts.sweep_outbox", "alerts"))
    folder = settings.broker_dir / "queue"
    (folder / "123_x.files.msg.partial").write_text("{")  # still being written: not a message yet
    oldest = min(folder.glob("*.files.msg"))
    os.utime(oldest, (time.time() - 300, time.time() - 300))
    found = broker_queues(settings, time.time())
    assert (found["files"].depth, found["alerts"].depth, found["schema"].depth) == (2, 1, 0)
    assert 299 < found["files"].oldest_seconds < 310 and found["schema"].oldest_seconds is None
    # Beat's messages are not in the ledger: the snapshot's lag is the broker's oldest file.
    snap = take_snapshot(sqlite_store, settings)
    assert snap.queues["files"].waiting == 0 and snap.queues["files"].broker_depth == 2
    assert snap.queues["files"].oldest_seconds > 299


def test_a_redis_broker_reports_each_queue_list_length(sqlite_store, tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        settings = load_settings(_env_file=None, data_dir=tmp_path / "var", database_url=sqlite_store.url,
                                 secret_key="k", broker_url=server.url)
        send(settings, *[("schema.check_due", "schema")] * 3, ("metrics.compact", "metrics"))
        found = broker_queues(settings, time.time())
        assert (found["schema"].depth, found["metrics"].depth, found["alerts"].depth) == (3, 1, 0)
        assert found["schema"].oldest_seconds is None  # Redis keeps no time with a message
        server.stop()
        assert broker_queues(settings, time.time()) is None  # unreadable, not zero
    finally:
        server.stop()


def finished(store, name: str, status: str, ago: float, error: str | None = None, count: int = 1) -> None:
    now = utcnow()
    with store.session() as s:
        for _ in range(count):
            s.add(TaskRun(id=os.urandom(16).hex(), name=name, kwargs={}, queue="maintenance", status=status,
                          requested_at=now - timedelta(seconds=ago + 1), finished_at=now - timedelta(seconds=ago),
                          error=error))


def test_the_failure_ratio_covers_fifteen_minutes_and_names_the_worst_tasks(store):
    finished(store, "metrics.pg_fast", "done", 60, count=12)
    finished(store, "metrics.pg_fast", "failed", 30, "OperationalError: refused", count=2)
    finished(store, "metrics.pg_fast", "failed", 20, "DbmonError: timeout: 5 s", count=1)
    finished(store, "schema.check", "failed", 100, "x" * 5000, count=5)
    finished(store, "posture.check", "failed", 3600, count=50)  # outside the window
    with store.session() as s:
        rate = failure_rate(s, utcnow())
    assert (rate.finished, rate.failed, rate.ratio) == (20, 8, 0.4)
    assert [(t["name"], t["failed"], t["finished"]) for t in rate.by_task] == [
        ("schema.check", 5, 5), ("metrics.pg_fast", 3, 15)]
    assert rate.by_task[1]["last_error"] == "DbmonError: timeout: 5 s" and len(rate.by_task[0]["last_error"]) == 300


def test_too_few_runs_give_no_ratio(store):
    finished(store, "selfmon.check", "failed", 10, count=MIN_FINISHED - 1)
    with store.session() as s:
        rate = failure_rate(s, utcnow())
    assert rate.failed == MIN_FINISHED - 1 and rate.ratio is None
