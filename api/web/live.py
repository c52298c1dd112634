"""`/live`: the Overview's Server-Sent Events stream (see monitor_app.status.live_feed).

A stream holds one of the API process's threads for its whole life (gunicorn gthread, 4 threads
per worker), so each process serves at most LIVE_STREAMS_PER_PROCESS at once and keeps the rest
for requests. A browser over the limit gets a stream that only says "retry in 5 s" and ends:
EventSource then tries again by itself, where an error status would make it give up for good.
The stream is for signed-in users only; signed out it is a 401 (a redirect to the login page
would be read as a broken stream).
"""

from __future__ import annotations

import socket
import threading
from select import POLLIN, poll

from flask import Blueprint, Response, abort, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from api.context import runtime
from api.web.overview import render_page_error
from api.web.session_auth import current_principal
from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.status.asset_filter import AssetFilter
from monitor_app.status.live_feed import LiveFeed, latest_event_id, message, parse_last_id
from monitor_app.status.overview import asset_row
from monitor_app.store.models import Asset

blueprint = Blueprint("live", __name__)
blueprint.register_error_handler(HTTPException, render_page_error)
LIVE_STREAMS_PER_PROCESS = 2
BUSY_RETRY_MS = 5_000
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_slots = threading.BoundedSemaphore(LIVE_STREAMS_PER_PROCESS)


class _Stream:
    """The feed, giving its slot back when the server closes the response (WSGI calls close() even
    when the client left before the first chunk, when a generator's `finally` would never run)."""

    def __init__(self, feed: LiveFeed):
        self.feed = feed
        self._held = True

    def __iter__(self):
        for chunk in self.feed:
            yield chunk.encode()

    def close(self) -> None:
        if self._held:
            self._held = False
            _slots.release()


def _shown_asset_ids(rt, filters: AssetFilter) -> frozenset[int] | None:
    """With a filter, the stream carries only the assets the page shows (labels redacted as there)."""
    if not filters.active:
        return None
    hide = LabelRedactor(rt.settings.label_deny_patterns)
    with rt.store.session() as s:
        assets = s.scalars(select(Asset).where(Asset.status != "gone")).all()
        return frozenset(r.id for r in filters.apply(asset_row(a, hide) for a in assets))


def _gone_check(environ):
    """Whether the browser closed the connection, without waiting for a write to fail.

    gunicorn hands the request's socket over in the environ. A browser sends nothing more on an
    event stream, so a plain socket that turns readable and peeks empty has been closed. A TLS
    socket cannot be peeked; there (and under other servers) the heartbeats find out."""
    sock = environ.get("gunicorn.socket")
    if type(sock) is not socket.socket:  # an SSLSocket (a subclass) cannot be peeked
        return lambda: False
    poller = poll()  # not select(): that fails on descriptors above 1023
    poller.register(sock, POLLIN)

    def gone() -> bool:
        try:
            if not poller.poll(0):
                return False
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    return gone


@blueprint.get("/live")
def stream():
    if current_principal() is None:
        abort(401, "sign in to receive live updates")
    if not _slots.acquire(blocking=False):
        return Response(message(comment="busy: too many live streams on this server", retry_ms=BUSY_RETRY_MS),
                        mimetype="text/event-stream", headers=HEADERS)
    try:
        rt = runtime()
        after = parse_last_id(request.headers.get("Last-Event-ID"), request.args.get("after"))
        feed = LiveFeed(rt.store, after=latest_event_id(rt.store) if after is None else after,
                        asset_ids=_shown_asset_ids(rt, AssetFilter.from_args(request.args)),
                        client_gone=_gone_check(request.environ))
    except BaseException:
        _slots.release()
        raise
    return Response(_Stream(feed), mimetype="text/event-stream", headers=HEADERS)
