"""The System page shows dbmon's own health from the stored heartbeats, queues and failures."""

from __future__ import annotations

from datetime import timedelta

from monitor_app.platform.task_queues import QUEUES
from monitor_app.selfmon.components import Heartbeat, record
from monitor_app.store.base import utcnow


def _beat(store, kind, instance, at, queues=()):
    record(store, [Heartbeat(kind, instance, "h1", 42, 10.0, at - timedelta(minutes=5), tuple(queues), {})], at)


def test_a_silent_worker_and_its_queue_show_as_problems(make_pages):
    pages = make_pages()
    store = pages.rt.store
    now = utcnow()
    _beat(store, "worker", "w1@h1", now, queues=[q for q in QUEUES if q != "files"])
    _beat(store, "worker", "w2@h1", now - timedelta(minutes=5), queues=["files"])
    _beat(store, "beat", "beat@h1", now)
    page = pages.browser("viewer").get("/system")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "no live worker consumes the files queue" in html
    assert 'data-queue="files"' in html and "w2@h1" in html and "silent" in html
    assert "Not configured (DBMON_DEADMAN_URL)" in html
    assert pages.browser(None).get("/system").status_code == 302  # signed out: to the login page
