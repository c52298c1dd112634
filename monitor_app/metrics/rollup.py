"""Rollup tiers and the arithmetic of buckets: samples into buckets, recompacted hours replaced.

Buckets are aligned to the Unix epoch, so the same hour is the same bucket in every tier, every
series and every process. A chunk of a tier spans a whole number of its buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor_app.metrics.chunk_codec import EPOCH, Bucket


@dataclass(frozen=True)
class Tier:
    name: str
    width: timedelta  # raw: the resolution samples are kept at
    chunk_span: timedelta


RAW = Tier("raw", timedelta(milliseconds=1), timedelta(hours=1))
ROLLUPS = (Tier("1m", timedelta(minutes=1), timedelta(days=1)),
           Tier("10m", timedelta(minutes=10), timedelta(days=7)),
           Tier("1h", timedelta(hours=1), timedelta(days=30)))
TIERS = {t.name: t for t in (RAW, *ROLLUPS)}


def floor_time(at: datetime, width: timedelta) -> datetime:
    return at - (at - EPOCH) % width


def to_buckets(samples: list[tuple[datetime, float]], width: timedelta) -> list[Bucket]:
    """Samples in time order -> one bucket per `width` that has any."""
    out: list[Bucket] = []
    for at, value in samples:
        start = floor_time(at, width)
        if out and out[-1].start == start:
            b = out[-1]
            out[-1] = Bucket(start, min(b.min, value), max(b.max, value), b.sum + value, value, b.samples + 1)
        else:
            out.append(Bucket(start, value, value, value, value, 1))
    return out


def replace_range(kept: list[Bucket], new: list[Bucket], start: datetime, end: datetime) -> list[Bucket]:
    """`kept` with its buckets in [start, end) replaced by `new`: recompacting an hour is idempotent."""
    merged = [b for b in kept if not start <= b.start < end] + new
    return sorted(merged, key=lambda b: b.start)
