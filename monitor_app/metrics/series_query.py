"""Reading series over a range with a step, from the tier that fits.

The tier is the coarsest one whose buckets are no wider than the step (raw samples while the range
is inside the raw window and the step is under a minute), then coarser still if the range would
need more than `MAX_BUCKETS` of them: 90 days at a 1 h step reads about 3 chunks per series, not
780,000 samples. Samples not yet packed (the current hour) are read from their rows and folded
the same way, so the newest bucket is never missing.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from monitor_app.metrics import chunk_codec
from monitor_app.metrics.chunk_codec import Bucket, epoch_ms, from_epoch_ms
from monitor_app.metrics.rollup import RAW, ROLLUPS, Tier
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
    window = _Window(epoch_ms(q.start), epoch_ms(q.end), q.step // timedelta(milliseconds=1))
    found = {i: _Steps(window) for i in series_ids}
    with store.session() as s:
        chunks = s.execute(select(MetricChunk.series_id, MetricChunk.start, MetricChunk.payload).where(
            MetricChunk.series_id.in_(series_ids), MetricChunk.tier == tier.name,
            MetricChunk.start < q.end, MetricChunk.end_at >= q.start - tier.width,
        ).order_by(MetricChunk.series_id, MetricChunk.start)).all()
        points = s.execute(select(MetricPoint.series_id, MetricPoint.at, MetricPoint.value).where(
            MetricPoint.series_id.in_(series_ids), MetricPoint.at >= q.start, MetricPoint.at < q.end,
        ).order_by(MetricPoint.series_id, MetricPoint.at)).all()
    for series_id, start, payload in chunks:
        if tier is RAW:
            times, values = chunk_codec.sample_columns(start, payload)
            found[series_id].add_samples(times, values)
        else:
            found[series_id].add_buckets(*chunk_codec.bucket_columns(start, payload))
    unpacked: dict[int, tuple[list[int], list[float]]] = {}
    for series_id, at, value in points:
        times, values = unpacked.setdefault(series_id, ([], []))
        times.append(epoch_ms(at))
        values.append(value)
    for series_id, (times, values) in unpacked.items():
        found[series_id].add_samples(times, values)
    return tier, {i: steps.buckets() for i, steps in found.items()}


@dataclass(frozen=True)
class _Window:
    start: int
    end: int
    step: int


class _Steps:
    """One series' buckets of the query's step, keyed by epoch milliseconds: whole chunks are folded
    in without building an object per sample (a 100-series overview reads some 300,000 of them)."""

    def __init__(self, window: _Window):
        self.window = window
        self.acc: dict[int, list] = {}  # step start -> [min, max, sum, last, count, time of last]

    def add_samples(self, times: list[int], values: list[float]) -> None:
        self.add_buckets(times, values, values, values, values, None)

    def add_buckets(self, times, mins, maxs, sums, lasts, counts) -> None:
        # Sorted times: each step's run of items is found by bisection and folded with the built-in
        # min/max/sum over slices, not item by item.
        step, acc = self.window.step, self.acc
        i, hi = bisect_left(times, self.window.start), bisect_left(times, self.window.end)
        while i < hi:
            key = times[i] - times[i] % step
            j = bisect_left(times, key + step, i + 1, hi)
            fold = [min(mins[i:j]), max(maxs[i:j]), sum(sums[i:j]), lasts[j - 1],
                    sum(counts[i:j]) if counts is not None else j - i, times[j - 1]]
            a = acc.get(key)
            if a is None:
                acc[key] = fold
            else:
                later = fold[5] >= a[5]
                acc[key] = [min(a[0], fold[0]), max(a[1], fold[1]), a[2] + fold[2], fold[3] if later else a[3],
                            a[4] + fold[4], max(a[5], fold[5])]
            i = j

    def buckets(self) -> list[Bucket]:
        return [Bucket(from_epoch_ms(k), a[0], a[1], a[2], a[3], a[4]) for k, a in sorted(self.acc.items())]
