"""The 90-day status history bar: one cell per UTC day, coloured by the worst status that day.

The history is rebuilt from the asset lifecycle events (`asset.up`, `asset.down`, `asset.stopped`,
...) rather than from a table of its own: those events are already the record of every status
change, written by the same code that changes the status. All assets' events of the window come
from one query (the `(type, detected_at)` index narrows it); the status an asset had when the
window opened is the `previous` its first event in the window carries, so no query per asset is
needed to look further back. The asset's current status is the last word for "now".

Event payloads come from the store, but a payload is whatever a writer put there: a `previous`
that is not a known status is ignored rather than trusted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.store.models import Asset, Event

DAYS = 90
# Lifecycle event type -> the status it moves the asset to (older names included).
STATUS_OF_TYPE = {
    "asset.up": "up", "asset.down": "down", "asset.stopped": "stopped",
    "asset.removed": "gone", "asset.gone": "gone",
    "asset.revived": "unknown", "asset.registered": "unknown", "asset.discovered": "unknown",
}
KNOWN = ("unknown", "up", "down", "stopped", "gone")
# Worst wins within a day. "unknown" ranks below "up": every asset is unknown for the seconds
# between registration and its first probe, which must not paint that whole day grey.
RANK = {"none": 0, "gone": 0, "unknown": 1, "up": 2, "stopped": 3, "down": 4}
LABEL = {"none": "no data", "gone": "not monitored", "unknown": "not checked", "up": "up",
         "stopped": "stopped", "down": "down"}


@dataclass(frozen=True)
class Transition:
    at: datetime
    status: str
    previous: str | None


@dataclass(frozen=True)
class DayCell:
    day: date
    status: str  # none | unknown | up | stopped | down (gone shows as none)

    @property
    def label(self) -> str:
        return f"{self.day.isoformat()}: {LABEL[self.status]}"


@dataclass
class History:
    cells: list[DayCell]
    up_seconds: float = 0.0
    down_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def uptime_percent(self) -> float | None:
        """Up time over up plus down time: planned stops and unchecked time do not count against it."""
        judged = self.up_seconds + self.down_seconds
        return None if judged <= 0 else 100.0 * self.up_seconds / judged

    @property
    def summary(self) -> str:
        """What the bar shows, in words, for screen readers."""
        parts = [f"{n} day{'s' if n != 1 else ''} {LABEL[s]}" for s, n in sorted(
            self.counts.items(), key=lambda item: -RANK[item[0]]) if n]
        uptime = self.uptime_percent
        head = f"{len(self.cells)}-day history"
        return head + (f", {uptime:.2f}% up" if uptime is not None else "") + ": " + ", ".join(parts)


def window_start(now: datetime, days: int = DAYS) -> datetime:
    first = now.astimezone(timezone.utc).date() - timedelta(days=days - 1)
    return datetime.combine(first, time.min, tzinfo=timezone.utc)


def lifecycle_transitions(session: Session, asset_ids: Iterable[int] | None, since: datetime
                          ) -> dict[int, list[Transition]]:
    """Every asset's status changes since `since`, oldest first, from one query.

    `detected_at >= since` is implied by `observed_at >= since` (an event is detected after it
    happens) and lets the (type, detected_at) index do the narrowing."""
    query = (select(Event.asset_id, Event.type, Event.observed_at, Event.payload)
             .where(Event.type.in_(list(STATUS_OF_TYPE)), Event.detected_at >= since, Event.observed_at >= since,
                    Event.asset_id.is_not(None))
             .order_by(Event.asset_id, Event.observed_at, Event.id))
    wanted = set(asset_ids) if asset_ids is not None else None
    found: dict[int, list[Transition]] = defaultdict(list)
    for asset_id, type_, observed_at, payload in session.execute(query):
        if wanted is not None and asset_id not in wanted:
            continue
        previous = payload.get("previous") if isinstance(payload, dict) else None
        found[asset_id].append(Transition(observed_at, STATUS_OF_TYPE[type_],
                                          previous if previous in KNOWN else None))
    return found


def build_history(*, created_at: datetime | None, current_status: str, transitions: Sequence[Transition],
                  now: datetime, days: int = DAYS) -> History:
    """The day cells of one asset, from its transitions in the window and its status now."""
    start = window_start(now, days)
    begin = max(start, created_at) if created_at else start
    if transitions:
        status = transitions[0].previous or ("unknown" if created_at and created_at >= start else "none")
    else:
        status = current_status if current_status in KNOWN else "unknown"
    # Segments [at, next at) with the status held; out-of-order or pre-creation times are clamped.
    points: list[tuple[datetime, str]] = [(begin, status)]
    for t in transitions:
        points.append((min(max(t.at, begin), now), t.status))
    points.append((now, current_status if current_status in KNOWN else points[-1][1]))
    segments = [(points[i][0], points[i + 1][0] if i + 1 < len(points) else now, points[i][1])
                for i in range(len(points))]

    history = History(cells=[])
    worst: dict[date, str] = {}
    for seg_start, seg_end, seg_status in segments:
        shown = "none" if seg_status == "gone" else seg_status
        if seg_status == "up":
            history.up_seconds += (seg_end - seg_start).total_seconds()
        elif seg_status == "down":
            history.down_seconds += (seg_end - seg_start).total_seconds()
        day = seg_start.astimezone(timezone.utc).date()
        last = max(seg_start, seg_end - timedelta(microseconds=1)).astimezone(timezone.utc).date()
        while day <= last:
            if RANK[shown] > RANK[worst.get(day, "none")]:
                worst[day] = shown
            day += timedelta(days=1)
    first_day = start.date()
    for i in range(days):
        day = first_day + timedelta(days=i)
        cell = DayCell(day, worst.get(day, "none"))
        history.cells.append(cell)
        history.counts[cell.status] = history.counts.get(cell.status, 0) + 1
    return history


def histories(session: Session, assets: Sequence[Asset], now: datetime, days: int = DAYS) -> dict[int, History]:
    """The history of each asset shown, with one query for all of them."""
    found = lifecycle_transitions(session, [a.id for a in assets], window_start(now, days))
    return {a.id: build_history(created_at=a.created_at, current_status=a.status, transitions=found.get(a.id, ()),
                                now=now, days=days) for a in assets}
