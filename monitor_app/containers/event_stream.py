"""Follow the engine's container events from a stored cursor, surviving engine restarts.

On every (re)connect the stream is opened *from the cursor first*, then a resync
(reconcile) is requested, then events are handed on: anything that happens during the
reconcile is already buffered in the open stream, so nothing falls in between. The
engine keeps only its last 256 events; an older cursor loses events to the buffer, and
the reconcile (also run periodically) covers that gap.

The cursor is the `timeNano` of the last event handed on plus the keys of the events
sharing that instant, because the engine's `since` is inclusive.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.orm import Session

from monitor_app.containers.lifecycle import LIFECYCLE_ACTIONS, PLANNED_WINDOW_NANO, split_action
from monitor_app.store.models.containers import ContainerEventCursor

log = logging.getLogger("dbmon.containers.events")
FORWARDED_ATTRIBUTES = ("name", "image", "exitCode", "signal", "oldName")


@dataclass
class Cursor:
    time_nano: int = 0
    keys: list[str] = field(default_factory=list)

    def seen(self, time_nano: int, key: str) -> bool:
        return time_nano < self.time_nano or (time_nano == self.time_nano and key in self.keys)

    def advance(self, time_nano: int, key: str) -> None:
        if time_nano > self.time_nano:
            self.time_nano, self.keys = time_nano, [key]
        elif key not in self.keys:
            self.keys.append(key)

    @property
    def since(self) -> str | None:
        return f"{self.time_nano // 10**9}.{self.time_nano % 10**9:09d}" if self.time_nano else None


class CursorStore:
    """The cursor in the dbmon store, one row per engine (keyed by the engine's ID)."""

    def __init__(self, store):
        self.store = store

    def load(self, source: str) -> Cursor:
        with self.store.session() as s:
            row = s.get(ContainerEventCursor, source)
            return Cursor(row.time_nano, list(row.keys or [])) if row else Cursor()

    def save(self, source: str, cursor: Cursor) -> None:
        with self.store.session() as s:
            save_cursor(s, source, cursor)


def save_cursor(session: Session, source: str, cursor: Cursor) -> None:
    row = session.get(ContainerEventCursor, source)
    if row is None:
        session.add(ContainerEventCursor(source=source, time_nano=cursor.time_nano, keys=list(cursor.keys)))
    else:
        row.time_nano, row.keys = cursor.time_nano, list(cursor.keys)


class Backoff:
    """Exponential with full jitter, so many watchers do not hammer a recovering engine together."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0):
        self.initial, self.maximum, self.attempt = initial, maximum, 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2 ** self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


def event_key(ev: dict) -> str:
    return f"{ev.get('id') or ev['Actor']['ID']}:{ev['Action']}"


class Annotator:
    """Remembers, per container, the last API stop/kill and OOM it saw, so a `die` can say whether it
    followed one. Done here because the follower sees events in order and tasks may run out of order."""

    def __init__(self, limit: int = 10000):
        self.stops: dict[str, int] = {}
        self.graceful: dict[str, int] = {}  # containers asked to stop with SIGTERM (docker stop), when
        self.ooms: dict[str, int] = {}
        self.limit = limit

    def annotate(self, cid: str, action: str, time_nano: int, attributes: dict) -> dict:
        base, _ = split_action(action)
        transition = self._TRANSITIONS.get(base)
        if transition is not None:
            transition(self, cid, time_nano, attributes)
        for remembered in (self.stops, self.graceful):
            if len(remembered) > self.limit:
                remembered.pop(next(iter(remembered)))
        return attributes

    def _stop_requested(self, cid: str, time_nano: int, attributes: dict) -> None:
        self.stops[cid] = time_nano
        if str(attributes.get("signal", "")) in ("15", "SIGTERM", "TERM"):
            self.graceful[cid] = time_nano

    def _oom_seen(self, cid: str, time_nano: int, attributes: dict) -> None:
        self.ooms[cid] = time_nano

    def _died(self, cid: str, time_nano: int, attributes: dict) -> None:
        if 0 <= time_nano - self.stops.get(cid, -PLANNED_WINDOW_NANO * 2) <= PLANNED_WINDOW_NANO:
            attributes["dbmon.after_stop"] = True
        # `docker stop` sends SIGTERM first, then SIGKILL when the timeout passes: still planned.
        if 0 <= time_nano - self.graceful.pop(cid, -PLANNED_WINDOW_NANO * 2) <= PLANNED_WINDOW_NANO:
            attributes["dbmon.graceful_stop"] = True
        if cid in self.ooms:
            attributes["dbmon.after_oom"] = True
            self.ooms.pop(cid, None)

    def _destroyed(self, cid: str, time_nano: int, attributes: dict) -> None:
        self.stops.pop(cid, None)
        self.graceful.pop(cid, None)
        self.ooms.pop(cid, None)

    # One transition per event kind that changes what is remembered; the rest pass through.
    _TRANSITIONS = {"kill": _stop_requested, "stop": _stop_requested, "restart": _stop_requested,
                    "oom": _oom_seen, "die": _died, "destroy": _destroyed}


def to_task_kwargs(ev: dict, annotator: Annotator) -> dict:
    cid = ev.get("id") or ev["Actor"]["ID"]
    attrs = ev.get("Actor", {}).get("Attributes", {}) or {}
    # Labels travel with every event; only dbmon's own are passed on, to identify a container
    # that is already gone when its task runs.
    forwarded = {k: v for k, v in attrs.items() if k in FORWARDED_ATTRIBUTES or k.startswith("dbmon.")}
    annotator.annotate(cid, ev["Action"], int(ev["timeNano"]), forwarded)
    return {"container_id": cid, "action": ev["Action"], "time_nano": int(ev["timeNano"]), "attributes": forwarded}


class EventFollower:
    """`on_event(kwargs)` is called in engine order; the cursor moves only after it returns, so an
    event is handed on at least once. `on_resync()` is called after every (re)connect."""

    def __init__(self, client_factory: Callable[[], object], cursors: CursorStore,
                 on_event: Callable[[dict], None], on_resync: Callable[[], None], *,
                 backoff: Backoff | None = None):
        self.client_factory, self.cursors = client_factory, cursors
        self.on_event, self.on_resync = on_event, on_resync
        self.backoff = backoff or Backoff()
        self.annotator = Annotator()
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.connects = 0
        self._stream = None
        self._client = None

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._follow_once()
            except Exception as exc:  # noqa: BLE001 - the one boundary: any engine failure means reconnect
                log.warning("docker event stream lost: %s", exc)
            finally:
                self.connected.clear()
                self._close_stream()
            if not self.stop_event.is_set():
                self.stop_event.wait(self.backoff.next())

    def _follow_once(self) -> None:
        client = self._client = self.client_factory()
        source = f"docker:{client.info()['ID']}"
        cursor = self.cursors.load(source)
        if not cursor.time_nano:
            # First start on this engine: history before now is the reconcile's job.
            cursor.time_nano = time.time_ns()
            self.cursors.save(source, cursor)
        self._stream = client.api.events(since=cursor.since, decode=True,
                                         filters={"type": "container", "event": list(LIFECYCLE_ACTIONS)})
        self.on_resync()
        self.connects += 1
        self.backoff.reset()
        self.connected.set()
        log.info("following docker events on %s from %s", source, cursor.since)
        for ev in self._stream:
            if self.stop_event.is_set():
                return
            if ev.get("Type") != "container" or "timeNano" not in ev:
                continue
            time_nano, key = int(ev["timeNano"]), event_key(ev)
            if cursor.seen(time_nano, key):
                continue
            self.on_event(to_task_kwargs(ev, self.annotator))
            cursor.advance(time_nano, key)
            self.cursors.save(source, cursor)
        log.warning("docker event stream ended (engine restarting?)")

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="docker-events", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001
                pass
