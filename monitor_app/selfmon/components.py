"""Component heartbeats: what each dbmon process writes about itself, and how a reader judges it.

Every long-running part of dbmon (a worker, beat, the watcher and each of its sources, an API
process) upserts one row keyed by (kind, instance) from its own loop. A row is alive while it
is younger than three of its writer's intervals and its writer did not say it stopped; the
interval is stored in the row because the writer, not the reader, knows how often it writes.

Times are the writers' clocks: the hosts of a distributed deployment must agree on the time
(NTP) to within a fraction of an interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitor_app.store.base import Store, iso, upsert_insert
from monitor_app.store.models.selfmon import COMPONENT_KINDS, ComponentHeartbeat

# A row older than this many of its intervals is dead: one late write is noise, three are an outage.
MISSED_INTERVALS = 3
# Bounds on what a process may put in its row: the detail is shown by the API as it is.
MAX_INSTANCE = 255
MAX_QUEUES = 64
MAX_DETAIL_KEYS = 32


@dataclass(frozen=True)
class Heartbeat:
    """What one write says."""

    kind: str
    instance: str
    host: str
    pid: int
    interval: float
    started_at: datetime
    queues: tuple[str, ...] = ()
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Component:
    """A stored row, judged at `now`."""

    kind: str
    instance: str
    host: str
    pid: int
    queues: tuple[str, ...]
    interval: float
    started_at: datetime
    last_seen_at: datetime
    detail: dict
    age_seconds: float
    alive: bool

    def as_dict(self) -> dict:
        return {"kind": self.kind, "instance": self.instance, "host": self.host, "pid": self.pid,
                "queues": list(self.queues), "interval": self.interval, "started_at": iso(self.started_at),
                "last_seen_at": iso(self.last_seen_at), "age_seconds": round(self.age_seconds, 1),
                "alive": self.alive, "detail": self.detail}


def _bounded_detail(detail: dict) -> dict:
    kept = {}
    for key, value in list(detail.items())[:MAX_DETAIL_KEYS]:
        if isinstance(value, str):
            value = value[:500]
        elif isinstance(value, list):
            value = [str(v)[:255] for v in value[:MAX_QUEUES]]
        elif not isinstance(value, (bool, int, float)) and value is not None:
            value = str(value)[:500]
        kept[str(key)[:64]] = value
    return kept


def record(store: Store, beats: list[Heartbeat], now: datetime) -> None:
    """Upsert each writer's row, in one transaction (a watcher writes its sources' rows with its own)."""
    for beat in beats:
        if beat.kind not in COMPONENT_KINDS:
            raise ValueError(f"unknown component kind {beat.kind!r}; one of {', '.join(COMPONENT_KINDS)}")
    with store.session() as s:
        for beat in beats:
            values = {"host": beat.host[:255], "pid": int(beat.pid),
                      "queues": [q[:64] for q in beat.queues[:MAX_QUEUES]], "interval": float(beat.interval),
                      "started_at": beat.started_at, "last_seen_at": now, "detail": _bounded_detail(beat.detail)}
            statement = upsert_insert(s, ComponentHeartbeat).values(
                kind=beat.kind, instance=beat.instance[:MAX_INSTANCE], **values)
            s.execute(statement.on_conflict_do_update(index_elements=["kind", "instance"], set_=values))


def judge(row: ComponentHeartbeat, now: datetime) -> Component:
    age = max(0.0, (now - row.last_seen_at).total_seconds())
    detail = row.detail if isinstance(row.detail, dict) else {}
    alive = age <= MISSED_INTERVALS * row.interval and not detail.get("stopped")
    queues = tuple(q for q in (row.queues or []) if isinstance(q, str))
    return Component(row.kind, row.instance, row.host, row.pid, queues, row.interval, row.started_at,
                     row.last_seen_at, detail, age, alive)


def components(session: Session, now: datetime, kinds: tuple[str, ...] = COMPONENT_KINDS) -> list[Component]:
    rows = session.scalars(select(ComponentHeartbeat).where(ComponentHeartbeat.kind.in_(kinds))
                           .order_by(ComponentHeartbeat.kind, ComponentHeartbeat.instance))
    return [judge(row, now) for row in rows]


def forget(session: Session, now: datetime, after: float) -> int:
    """Delete rows of components not seen for `after` seconds: a renamed or retired worker."""
    result = session.execute(delete(ComponentHeartbeat).where(
        ComponentHeartbeat.last_seen_at < now - timedelta(seconds=after)))
    return int(getattr(result, "rowcount", 0) or 0)


def freshest(found: list[Component]) -> Component | None:
    return min(found, key=lambda c: c.age_seconds) if found else None
