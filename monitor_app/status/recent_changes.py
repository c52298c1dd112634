"""Which events the pages call "changes", and how one is shown.

Changes are what altered a monitored system or its watch: schema changes, config file edits,
container lifecycle and the assets' own lifecycle. The overview lists the latest of them and
the live stream pushes new ones, so both read the same predicate from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from monitor_app.store.models import Event

CHANGE_TYPES = ("schema.changed", "file.config_changed")
CHANGE_PREFIXES = ("asset.", "container.")
MAX_SUMMARY = 500


def is_change(event_type: str) -> bool:
    return event_type in CHANGE_TYPES or event_type.startswith(CHANGE_PREFIXES)


def change_clause() -> ColumnElement[bool]:
    return or_(Event.type.in_(CHANGE_TYPES), *(Event.type.startswith(p, autoescape=True) for p in CHANGE_PREFIXES))


@dataclass(frozen=True)
class ChangeRow:
    id: int
    type: str
    severity: str
    summary: str
    asset_id: int | None
    asset: str
    at: str  # ISO 8601, UTC
    at_text: str  # as the tables print it

    def as_dict(self) -> dict:
        return asdict(self)


def change_row(event: Event, names: Mapping[int, str]) -> ChangeRow:
    summary = event.summary if isinstance(event.summary, str) else ""
    if len(summary) > MAX_SUMMARY:
        summary = summary[:MAX_SUMMARY - 1] + "…"
    return ChangeRow(id=event.id, type=event.type, severity=event.severity, summary=summary, asset_id=event.asset_id,
                     asset=names.get(event.asset_id or 0, ""), at=event.detected_at.isoformat(),
                     at_text=event.detected_at.strftime("%Y-%m-%d %H:%M:%S"))


def recent_changes(session: Session, names: Mapping[int, str], *, limit: int = 25,
                   asset_ids: Iterable[int] | None = None) -> list[ChangeRow]:
    """The latest changes, newest first; with `asset_ids`, only those assets' changes."""
    query = select(Event).where(change_clause())
    if asset_ids is not None:
        query = query.where(Event.asset_id.in_(list(asset_ids)))
    rows = session.scalars(query.order_by(Event.id.desc()).limit(limit)).all()
    return [change_row(e, names) for e in rows]
