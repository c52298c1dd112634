"""Reading series over a range with a step, from the tier that fits.

The tier is the coarsest one whose buckets are no wider than the step (raw samples while the range
is inside the raw window and the step is under a minute), then coarser still if the range would
need more than `MAX_BUCKETS` of them: 90 days at a 1 h step reads about 3 chunks per series, not
780,000 samples. Samples not yet packed (the current hour) are read from their rows and folded
the same way, so the newest bucket is never missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from monitor_app.metrics import chunk_codec
from monitor_app.metrics.chunk_codec import Bucket
from monitor_app.metrics.rollup import RAW, ROLLUPS, Tier, merge_buckets, to_buckets
from monitor_app.metrics.sample_store import RAW_RETENTION
from monitor_app.store.base import Store
from monitor_app.store.models import MetricChunk, MetricPoint

MAX_BUCKETS = 20_000


@dataclass(frozen=True)
class Query:
    start: datetime
    end: datetime
    step: timedelta


def pick_tier(q: Query, now: datetime) -> Tier:
    if q.step < timedelta(minutes=1) and q.start >= now - RAW_RETENTION:
        return RAW
    fitting = [t for t in ROLLUPS if t.width <= max(q.step, ROLLUPS[0].width)]
    tier = fitting[-1]
    for coarser in ROLLUPS[ROLLUPS.index(tier):]:
        tier = coarser
        if (q.end - q.start) / coarser.width <= MAX_BUCKETS:
            break
    return tier


def read_series(store: Store, series_ids: list[int], q: Query, now: datetime) -> tuple[Tier, dict[int, list[Bucket]]]:
    """Buckets of `q.step` per series over [start, end), read from the tier `pick_tier` chose."""
    tier = pick_tier(q, now)
    found: dict[int, list[Bucket]] = {i: [] for i in series_ids}
    with store.session() as s:
        chunks = s.scalars(select(MetricChunk).where(
            MetricChunk.series_id.in_(series_ids), MetricChunk.tier == tier.name,
            MetricChunk.start < q.end, MetricChunk.end_at >= q.start - tier.width,
        ).order_by(MetricChunk.series_id, MetricChunk.start)).all()
        points = s.execute(select(MetricPoint.series_id, MetricPoint.at, MetricPoint.value).where(
            MetricPoint.series_id.in_(series_ids), MetricPoint.at >= q.start, MetricPoint.at < q.end,
        ).order_by(MetricPoint.series_id, MetricPoint.at)).all()
    for chunk in chunks:
        found[chunk.series_id] += _decode(tier, chunk)
    unpacked: dict[int, list] = {}
    for series_id, at, value in points:
        unpacked.setdefault(series_id, []).append((at, value))
    for series_id, samples in unpacked.items():
        found[series_id] += to_buckets(samples, tier.width)
    return tier, {i: _to_step(buckets, q) for i, buckets in found.items()}


def _decode(tier: Tier, chunk: MetricChunk) -> list[Bucket]:
    if tier is RAW:
        return to_buckets(chunk_codec.decode_samples(chunk.start, chunk.payload), tier.width)
    return chunk_codec.decode_buckets(chunk.start, chunk.payload)


def _to_step(buckets: list[Bucket], q: Query) -> list[Bucket]:
    inside = sorted((b for b in buckets if q.start <= b.start < q.end), key=lambda b: b.start)
    return merge_buckets(inside, q.step)
