"""dbmon's own series, filed under one `dbmon` asset (kind `service`) so rules, graphs and
GET /metrics treat them like any monitored system's.

The asset is registered the first time the self-check runs, as the host sampler registers a
host; it has no engine, so no probe or collector ever picks it up. Built-in rules select it by
name and kind (`asset: dbmon`, `asset_kind=service`), so a monitored database that happens to be
called "dbmon" is never judged by them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor_app.assets import lifecycle
from monitor_app.errors import DbmonError
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.selfmon.snapshot import Snapshot
from monitor_app.store.models import Asset

ASSET_SOURCE = "dbmon"
ASSET_NAME = "dbmon"
ASSET_KIND = "service"


def _find(session: Session) -> Asset | None:
    return session.scalar(select(Asset).where(Asset.source == ASSET_SOURCE, Asset.external_id == ASSET_NAME))


def dbmon_asset(session: Session, now: datetime) -> Asset:
    asset = _find(session)
    if asset is None:
        try:
            with session.begin_nested():
                asset = lifecycle.register(session, Asset(
                    kind=ASSET_KIND, engine=None, name=ASSET_NAME, source=ASSET_SOURCE, external_id=ASSET_NAME,
                    labels={}, connection={}, details={}), "dbmon registered by its first self-check",
                    status="up", now=now)
        except IntegrityError:  # two first checks at once: the other one registered it
            asset = _find(session)
    if asset is None:
        raise DbmonError("the dbmon asset could not be registered or found")
    asset.last_checked_at = now
    return asset


def snapshot_samples(asset_id: int, snap: Snapshot, now: datetime) -> list[SeriesSample]:
    def sample(name: str, value: float, **labels: str) -> SeriesSample:
        return SeriesSample(asset_id, name, float(value), now, labels)

    out = [sample("dbmon.broker_up", 1 if snap.broker["ok"] else 0)]
    for queue, stats in snap.queues.items():
        out += [sample("dbmon.queue_depth", stats.waiting, queue=queue),
                sample("dbmon.queue_oldest_seconds", round(stats.oldest_seconds, 1), queue=queue)]
        if stats.broker_depth is not None:
            out.append(sample("dbmon.queue_broker_depth", stats.broker_depth, queue=queue))
        if stats.consumers is not None:
            out.append(sample("dbmon.queue_consumers", stats.consumers, queue=queue))
    a = snap.assessment
    if a is not None:
        out.append(sample("dbmon.workers_alive", a.workers["alive"]))
        if a.beat["age_seconds"] is not None:
            out.append(sample("dbmon.beat_age_seconds", a.beat["age_seconds"]))
        if a.watcher["age_seconds"] is not None:
            out.append(sample("dbmon.watcher_age_seconds", a.watcher["age_seconds"]))
        out += [sample("dbmon.watch_source_up", 1 if s["ok"] else 0, source=name)
                for name, s in a.watch_sources.items()]
    if snap.tasks is not None and snap.tasks.ratio is not None:
        out.append(sample("dbmon.task_failure_ratio", snap.tasks.ratio))
    return out
