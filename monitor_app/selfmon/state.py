"""Named moments the self-check shares between workers (`selfmon_state`).

`claim` is a conditional UPDATE: of several workers running the self-check at once, one moves
the row's time forward and acts (pings the dead-man's switch); the others see no row updated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from monitor_app.store.base import Store, upsert_insert
from monitor_app.store.models.selfmon import SelfmonState


def claim(store: Store, name: str, now: datetime, every: float) -> bool:
    """True for the one caller that may act now: nobody acted under `name` within `every` seconds."""
    with store.session() as s:
        s.execute(upsert_insert(s, SelfmonState).values(name=name, at=None, detail={})
                  .on_conflict_do_nothing(index_elements=["name"]))
        moved = s.execute(update(SelfmonState)
                          .where(SelfmonState.name == name,
                                 or_(SelfmonState.at.is_(None), SelfmonState.at <= now - timedelta(seconds=every)))
                          .values(at=now))
        return getattr(moved, "rowcount", 0) == 1


def remember(store: Store, name: str, now: datetime, detail: dict, *, move_time: bool = True) -> None:
    with store.session() as s:
        values = {"detail": detail, **({"at": now} if move_time else {})}
        s.execute(upsert_insert(s, SelfmonState).values(name=name, at=now, detail=detail)
                  .on_conflict_do_update(index_elements=["name"], set_=values))


def read(session: Session) -> dict[str, tuple[datetime | None, dict]]:
    return {row.name: (row.at, row.detail if isinstance(row.detail, dict) else {})
            for row in session.scalars(select(SelfmonState))}
