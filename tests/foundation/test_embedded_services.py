"""The single-machine worker's beat and watcher threads: one scheduler per data directory, fast stop."""

from __future__ import annotations

import time

from monitor_app.config.settings import Settings
from monitor_app.platform.heartbeat import age_seconds
from monitor_app.store.migrate import upgrade
from tests.harness import wait_for
from workers.celery_app import make_celery
from workers.embedded_services import EmbeddedServices


def _settings(tmp_path) -> Settings:
    (tmp_path / "dbmon.yaml").write_text("assets: []\n")
    settings = Settings(_env_file=None, data_dir=tmp_path / "var", config_file=tmp_path / "dbmon.yaml",
                        secret_key="embedded-test")
    upgrade(settings.resolved_database_url)
    return settings


def test_only_one_worker_per_data_directory_schedules_and_both_stop_quickly(tmp_path):
    settings = _settings(tmp_path)
    app = make_celery(settings)
    first, second = EmbeddedServices(app, settings), EmbeddedServices(app, settings)
    first.start()
    second.start()
    try:
        assert first.beat is not None and first.beat.is_alive()
        assert second.beat is None  # the lock is held: this one only runs tasks
        wait_for(lambda: age_seconds(settings, "beat") is not None and age_seconds(settings, "beat") < 5, 15,
                 what="beat heartbeat from the upkeep loop")
        wait_for(lambda: age_seconds(settings, "watcher") is not None and age_seconds(settings, "watcher") < 5, 15,
                 what="watcher heartbeat from its thread")
        # Both run a watcher thread, but only one runs the watch sources: the other stands by.
        wait_for(lambda: first.watcher is not None and second.watcher is not None, 15, what="both watchers")
        wait_for(lambda: first.watcher.leading.is_set() or second.watcher.leading.is_set(), 15, what="a leader")
        time.sleep(1.5)
        assert [first.watcher.leading.is_set(), second.watcher.leading.is_set()].count(True) == 1
    finally:
        started = time.monotonic()
        first.stop()
        second.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 5
    # stop() waits up to 3 s for all of them; on a loaded machine the last may end just after.
    wait_for(lambda: not first.beat.is_alive() and all(not t.is_alive() for t in first._threads + second._threads),
             5, what="every embedded thread ended")

    third = EmbeddedServices(app, settings)  # the lock was released with the first
    third.start()
    try:
        assert third.beat is not None
    finally:
        third.stop()
