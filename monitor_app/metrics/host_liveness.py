"""A host asset lives as long as its sampler reports: silent for N sampling intervals, it is down."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.assets import lifecycle
from monitor_app.store.models import Asset

HOST_SOURCE = "host"


def host_asset(session: Session, hostname: str, now: datetime) -> Asset:
    """The host's asset, registered the first time its sampler runs (whether or not it succeeds)."""
    host = session.scalar(select(Asset).where(Asset.source == HOST_SOURCE, Asset.external_id == hostname))
    if host is None:
        host = lifecycle.register(session, Asset(kind="host", engine=None, name=hostname, source=HOST_SOURCE,
                                                 external_id=hostname, labels={}, connection={}, details={}),
                                  f"host {hostname} registered by its first resource sample", now=now)
    return host


def sampler_reported(session: Session, hostname: str, now: datetime) -> Asset:
    """The host's asset after a sample: registered on the first, up again after a silence."""
    host = host_asset(session, hostname, now)
    previous_sample = host.last_checked_at
    host.last_checked_at = now
    lifecycle.observe(session, host, True, f"host {hostname} is reporting resource samples",
                      payload={"previous_sample_at": previous_sample.isoformat() if previous_sample else None},
                      now=now)
    return host


def silent_samplers(session: Session, now: datetime, interval: float, missed: int) -> list[str]:
    """Hosts whose sampler has not reported for `missed` intervals: `asset.down`, once."""
    cutoff = now - timedelta(seconds=interval * missed)
    silent = session.scalars(select(Asset).where(
        Asset.source == HOST_SOURCE, Asset.status.in_(("up", "unknown")), Asset.last_checked_at < cutoff)).all()
    for host in silent:
        last = host.last_checked_at
        lifecycle.fail(session, host, f"host {host.name}: no resource sample for {missed} intervals "
                                      f"of {interval:g} s (last at {last.isoformat() if last else 'never'})",
                       payload={"last_sample_at": last.isoformat() if last else None, "interval_s": interval,
                                "missed_intervals": missed}, now=now)
    return [h.name for h in silent]
