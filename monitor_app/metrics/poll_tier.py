"""What every per-asset metrics collector shares: its row of poll state, when an asset falls due,
and storing a poll's samples, state and health in one unit of work.

A collector (the PostgreSQL fast tier, SQLite files, container stats) names its tier (the key of
its `MetricPollState` rows) and its collector (the name its failures are reported under).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.platform import spread
from monitor_app.platform.collector_health import Attempt, asset_subject, record_attempt
from monitor_app.store.models import Asset, MetricPollState


@dataclass(frozen=True)
class PollTier:
    tier: str
    collector: str

    def state(self, session: Session, asset_id: int) -> MetricPollState:
        state = session.get(MetricPollState, (asset_id, self.tier))
        if state is None:
            state = MetricPollState(asset_id=asset_id, tier=self.tier, counters={})
            session.add(state)
        return state

    def candidates(self, session: Session, *columns, where) -> list:
        """Live assets matching `where`: (id, name, *columns, sent at, polled at), in id order."""
        return list(session.execute(
            select(Asset.id, Asset.name, *columns, MetricPollState.dispatched_at, MetricPollState.polled_at)
            .outerjoin(MetricPollState, (MetricPollState.asset_id == Asset.id) & (MetricPollState.tier == self.tier))
            .where(*where, (Asset.status.is_(None)) | (Asset.status != "gone")).order_by(Asset.id)).all())

    def mark_due(self, session: Session, slots: Iterable[tuple[int, float, datetime | None, datetime | None]],
                 now: datetime) -> list[int]:
        """Of (asset id, interval, sent at, polled at), the assets whose slot has come; marked sent."""
        due = [asset_id for asset_id, every, sent, polled in slots
               if spread.is_due(asset_id, every, _latest(sent, polled), now)]
        for asset_id in due:
            self.state(session, asset_id).dispatched_at = now
        return due

    def report(self, rt, session: Session, asset_id: int, name: str, error: str | None) -> None:
        record_attempt(session, Attempt(self.collector, asset_subject(asset_id), asset_id, name, error),
                       failures_before_event=rt.settings.collector_failures_before_event)

    def store(self, rt, asset_id: int, name: str, samples: list[SeriesSample], error: str | None,
              update: Callable[[Session, MetricPollState], None]) -> None:
        """Samples, the poll state (`update`) and health in one transaction; on failure none of them."""
        try:
            with rt.store.session() as s:
                rt.series_writer.write_in(s, samples)
                update(s, self.state(s, asset_id))
                self.report(rt, s, asset_id, name, error)
        except Exception:
            rt.series_writer.forget()
            raise


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None
