"""The Overview's live updates as a Server-Sent Events stream, polled from the store.

Every process (API worker, task worker, watcher) writes events straight to the store, so the
store is the one place that sees them all: the stream polls it about once a second for event
ids above the last one sent, which costs one indexed query per connection per second and needs
no broker or notification channel. Each poll is its own short transaction, so a connection
never holds a snapshot open on PostgreSQL.

A connection lives a bounded time (the browser's EventSource reconnects by itself, sending the
last id it saw, so nothing is missed) and sends a comment as heartbeat every few seconds: proxies
that drop idle connections keep it, and a browser that went away is noticed at the next write
(only a failed write tells a WSGI server that), which frees the thread the stream held. Messages:

- `change` (id = the event id): a new change event, as the recent-changes table shows it;
- `asset`: an asset whose status changed: id, status, since, and the new overall summary.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from sqlalchemy import func, select

from monitor_app.status.recent_changes import change_row, is_change
from monitor_app.status.status_history import STATUS_OF_TYPE
from monitor_app.store.base import Store
from monitor_app.store.models import Asset, Event

RETRY_MS = 3000
BATCH = 200


def message(data: dict | None = None, *, event: str | None = None, id: int | None = None,
            comment: str | None = None, retry_ms: int | None = None) -> str:
    """One SSE message. JSON never holds a raw newline, so `data` is always one line."""
    lines = []
    if comment is not None:
        lines.append(": " + comment.replace("\n", " ").replace("\r", " "))
    if retry_ms is not None:
        lines.append(f"retry: {int(retry_ms)}")
    if event:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {int(id)}")
    if data is not None:
        lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return "\n".join(lines) + "\n\n"


def parse_last_id(*candidates: str | None) -> int | None:
    """The first candidate that is a plain non-negative event id (Last-Event-ID, ?after=)."""
    for value in candidates:
        if value and value.isdigit() and len(value) <= 19:
            return int(value)
    return None


def latest_event_id(store: Store) -> int:
    with store.session() as s:
        return s.scalar(select(func.max(Event.id))) or 0


@dataclass
class LiveFeed:
    store: Store
    after: int
    asset_ids: frozenset[int] | None = None  # None: every asset
    poll_seconds: float = 1.0
    lifetime_seconds: float = 300.0
    heartbeat_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # Asked before each pause: True when the server can tell the browser has gone (see api.web.live).
    client_gone: Callable[[], bool] = lambda: False

    def __iter__(self) -> Iterator[str]:
        deadline = self.clock() + self.lifetime_seconds
        last_write = self.clock()
        yield message(comment="dbmon live", retry_ms=RETRY_MS)
        while self.clock() < deadline and not self.client_gone():
            sent = False
            for chunk in self.poll():
                sent = True
                yield chunk
            if sent:
                last_write = self.clock()
                continue  # more may be waiting: a burst drains before the next pause
            if self.clock() - last_write >= self.heartbeat_seconds:
                last_write = self.clock()
                yield message(comment="heartbeat")
            self.sleep(self.poll_seconds)
        yield message(comment="reconnect")

    def poll(self) -> list[str]:
        """Messages for the events stored since the last poll (at most BATCH of them)."""
        with self.store.session() as s:
            events = list(s.scalars(select(Event).where(Event.id > self.after).order_by(Event.id).limit(BATCH)))
            if not events:
                return []
            self.after = events[-1].id
            wanted = [e for e in events if self._shown(e.asset_id)]
            ids = {e.asset_id for e in wanted if e.asset_id is not None}
            names = dict(s.execute(select(Asset.id, Asset.name).where(Asset.id.in_(ids))).all()) if ids else {}
            out = [message(change_row(e, names).as_dict(), event="change", id=e.id)
                   for e in wanted if is_change(e.type)]
            moved = {e.asset_id for e in wanted if e.type in STATUS_OF_TYPE and e.asset_id is not None}
            out += self._asset_messages(s, moved)
        return out

    def _shown(self, asset_id: int | None) -> bool:
        return self.asset_ids is None or asset_id in self.asset_ids

    def _asset_messages(self, session, asset_ids: Iterable[int]) -> list[str]:
        asset_ids = list(asset_ids)
        if not asset_ids:
            return []
        counts = dict(session.execute(select(Asset.status, func.count()).where(Asset.status != "gone")
                                      .group_by(Asset.status)).all())
        overall = "down" if counts.get("down") else ("up" if counts.get("up") else "unknown")
        rows = session.execute(select(Asset.id, Asset.status, Asset.status_changed_at)
                               .where(Asset.id.in_(asset_ids)).order_by(Asset.id)).all()
        return [message({"id": r.id, "status": r.status,
                         "since": r.status_changed_at.strftime("%Y-%m-%d %H:%M:%S") if r.status_changed_at else "",
                         "overall": overall, "down": counts.get("down", 0)}, event="asset")
                for r in rows]
