"""Per-channel token buckets kept in the database, so every worker shares one budget.

Overflow is not dropped: the caller marks the notification `suppressed` and attaches it
to a pending summary row that goes out when the bucket has a token again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor_app.alerting.config import RateLimit
from monitor_app.store.models.alerting import ChannelBucket


@dataclass
class Decision:
    allowed: bool
    next_token_at: datetime


def take(session: Session, channel: str, limit: RateLimit, now: datetime) -> Decision:
    bucket = session.scalars(select(ChannelBucket).where(ChannelBucket.channel == channel).with_for_update()).first()
    if bucket is None:
        bucket = ChannelBucket(channel=channel, tokens=float(limit.burst), updated_at=now)
        try:
            with session.begin_nested():
                session.add(bucket)
        except IntegrityError:
            bucket = session.scalars(select(ChannelBucket).where(ChannelBucket.channel == channel)
                                     .with_for_update()).one()
    rate = limit.per_minute / 60.0
    elapsed = max((now - bucket.updated_at).total_seconds(), 0.0)
    tokens = min(float(limit.burst), bucket.tokens + elapsed * rate)
    bucket.updated_at = now
    if tokens >= 1.0:
        bucket.tokens = tokens - 1.0
        return Decision(True, now)
    bucket.tokens = tokens
    return Decision(False, now + timedelta(seconds=(1.0 - tokens) / rate))
