"""Silences mute notifications for alerts whose labels match, between start and end.

A silenced alert still changes state and is listed; it simply does not notify or escalate.
Config-file silences are mirrored into the table (keyed by a hash of their content) so the
API and CLI show one list.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.alerting.config import SilenceSpec
from monitor_app.alerting.matchers import Matcher, all_match, parse_matchers
from monitor_app.errors import DbmonError
from monitor_app.store.models.alerting import Silence


@dataclass(frozen=True)
class ActiveSilence:
    id: int
    matchers: tuple[Matcher, ...]

    def matches(self, labels: Mapping[str, object]) -> bool:
        return all_match(self.matchers, labels)


def active(session: Session, now: datetime) -> list[ActiveSilence]:
    rows = session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)).all()
    return [ActiveSilence(row.id, tuple(parse_matchers(row.matchers))) for row in rows]


def matching(silences: list[ActiveSilence], labels: Mapping[str, object]) -> list[int]:
    return [s.id for s in silences if s.matches(labels)]


def create(session: Session, *, matchers, ends_at: datetime, created_by: str, comment: str = "",
           starts_at: datetime | None = None, now: datetime) -> Silence:
    try:
        parsed = parse_matchers(matchers)
    except ValueError as exc:
        raise DbmonError(str(exc), permanent=True, field="matchers") from None
    if not parsed:
        raise DbmonError("a silence needs at least one matcher", permanent=True, field="matchers")
    starts = starts_at or now
    if ends_at <= starts:
        raise DbmonError("ends_at must be after starts_at", permanent=True, field="ends_at")
    row = Silence(matchers=[str(m) for m in parsed], starts_at=starts, ends_at=ends_at,
                  created_by=created_by, comment=comment, created_at=now)
    session.add(row)
    session.flush()
    return row


def expire(session: Session, silence_id: int, now: datetime) -> Silence:
    row = session.get(Silence, silence_id)
    if row is None:
        raise DbmonError(f"no silence {silence_id}", permanent=True, field="id")
    if row.ends_at > now:
        row.ends_at = now
        if row.starts_at > now:
            row.starts_at = now
    return row


def sync_config(session: Session, specs: list[SilenceSpec], now: datetime) -> int:
    """Insert config silences not yet stored; returns how many were added."""
    added = 0
    for spec in specs:
        body = {"m": [str(m) for m in spec.matchers], "s": spec.starts_at.isoformat() if spec.starts_at else None,
                "e": spec.ends_at.isoformat()}
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
        if session.scalar(select(Silence.id).where(Silence.config_key == key)) is not None:
            continue
        session.add(Silence(matchers=body["m"], starts_at=spec.starts_at or now, ends_at=spec.ends_at,
                            created_by=spec.created_by, comment=spec.comment, source="config",
                            config_key=key, created_at=now))
        added += 1
    session.flush()
    return added
