"""The live stream: new events and status changes pushed as Server-Sent Events."""

from __future__ import annotations

import queue
import threading

from monitor_app.assets import lifecycle
from monitor_app.platform.event_log import record_event
from monitor_app.status.live_feed import LiveFeed, latest_event_id
from monitor_app.store.models import Asset


def add_asset(store, name: str, labels: dict | None = None) -> int:
    with store.session() as s:
        a = Asset(kind="database", engine="postgresql", name=name, source="config", external_id=name,
                  labels=labels or {}, connection={}, details={}, status="up")
        s.add(a)
        s.flush()
        return a.id


def crash(store, asset_id: int, why: str = "connection refused") -> None:
    with store.session() as s:
        lifecycle.fail(s, s.get(Asset, asset_id), f"{s.get(Asset, asset_id).name} is down: {why}")


def read_until(response, needle: bytes, timeout: float = 10.0) -> bytes:
    """Read the streamed body in a thread until `needle` arrives; fail instead of hanging."""
    chunks: queue.Queue = queue.Queue()

    def pump():
        seen = b""
        for chunk in response.response:
            seen += chunk
            chunks.put(seen)
            if needle in seen:
                return

    threading.Thread(target=pump, daemon=True).start()
    seen = b""
    while needle not in seen:
        try:
            seen = chunks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{needle!r} not streamed within {timeout}s; got {seen!r}") from None
    return seen


def test_the_stream_pushes_a_new_change_and_the_asset_status(pages, store):
    asset_id = add_asset(store, "orders-db")
    b = pages.browser("viewer")
    after = latest_event_id(store)
    response = b.get(f"/live?after={after}", buffered=False)
    try:
        assert response.status_code == 200 and response.mimetype == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        crash(store, asset_id)
        body = read_until(response, b"event: asset").decode()
    finally:
        response.close()
    assert body.startswith(": dbmon live\nretry: 3000\n\n")
    assert "event: change\nid: " in body and '"type":"asset.down"' in body and '"asset":"orders-db"' in body
    assert '"status":"down"' in body and '"overall":"down"' in body and '"down":1' in body


def test_it_resumes_after_the_last_event_id_the_browser_saw(pages, store):
    asset_id = add_asset(store, "orders-db")
    with store.session() as s:
        first = record_event(s, type="container.die", asset_id=asset_id, summary="first die").id
        record_event(s, type="container.start", asset_id=asset_id, summary="second start")
    response = pages.browser("viewer").get("/live?after=0", headers={"Last-Event-ID": str(first)}, buffered=False)
    try:
        body = read_until(response, b"second start").decode()
    finally:
        response.close()
    assert "first die" not in body


def test_the_feed_follows_the_page_filter_heartbeats_and_ends(store):
    prod, dev = add_asset(store, "prod-db", {"env": "prod"}), add_asset(store, "dev-db", {"env": "dev"})
    ticks = {"now": 0.0, "sleeps": 0}

    def sleep(seconds: float) -> None:
        ticks["now"] += seconds
        ticks["sleeps"] += 1
        if ticks["sleeps"] == 2:  # something happens while the stream waits
            crash(store, dev)
            crash(store, prod)

    feed = LiveFeed(store, after=latest_event_id(store), asset_ids=frozenset({prod}), poll_seconds=1.0,
                    lifetime_seconds=30.0, heartbeat_seconds=10.0, clock=lambda: ticks["now"], sleep=sleep)
    body = "".join(feed)
    assert "prod-db is down" in body and "dev-db" not in body
    assert f'"id":{prod},"status":"down"' in body and f'"id":{dev},"status"' not in body
    assert body.count(": heartbeat") == 2 and body.endswith(": reconnect\n\n")
    assert 25 <= ticks["sleeps"] <= 31  # one poll a second, for the bounded lifetime


def test_streams_are_capped_per_process_and_the_browser_is_told_to_retry_later(pages):
    b = pages.browser("viewer")
    held = [b.get("/live", buffered=False) for _ in range(2)]
    try:
        busy = b.get("/live")
        assert busy.status_code == 200 and "retry: 5000" in busy.get_data(as_text=True)
    finally:
        for r in held:
            r.close()
    again = b.get("/live", buffered=False)
    try:
        assert read_until(again, b"retry: 3000\n").startswith(b": dbmon live")
    finally:
        again.close()


def test_a_closed_browser_connection_ends_the_stream_without_waiting_for_a_write(store):
    import socket

    from api.web.live import _gone_check

    server_side, browser_side = socket.socketpair()
    try:
        gone = _gone_check({"gunicorn.socket": server_side})
        assert gone() is False
        browser_side.close()
        assert gone() is True
        feed = LiveFeed(store, after=0, client_gone=gone, sleep=lambda s: None)
        assert list(feed) == [": dbmon live\nretry: 3000\n\n", ": reconnect\n\n"]
    finally:
        server_side.close()
    assert _gone_check({})() is False  # another server: the heartbeats find out
