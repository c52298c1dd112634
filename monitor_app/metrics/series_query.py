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
from typing import NamedTuple

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


def read_series(store: Store, series_ids: list[int], q: Query, now: datetime) -> tuple[Tier, dict[int, SeriesBuckets]]:
    """Buckets of `q.step` per series over [start, end), read from the tier `pick_tier` chose."""
    with store.session() as s:
        return read_series_in(s, series_ids, q, now)


def read_series_in(s, series_ids: list[int], q: Query, now: datetime) -> tuple[Tier, dict[int, SeriesBuckets]]:
    """`read_series` inside a session the caller holds (alert evaluation reads and writes in one)."""
    tier = pick_tier(q, now)
    window = _Window(epoch_ms(q.start), epoch_ms(q.end), q.step // timedelta(milliseconds=1))
    found = {i: _Steps(window) for i in series_ids}
    chunks = s.execute(select(MetricChunk.series_id, MetricChunk.start, MetricChunk.payload).where(
        MetricChunk.series_id.in_(series_ids), MetricChunk.tier == tier.name,
        MetricChunk.start < q.end, MetricChunk.end_at >= q.start - tier.width,
    ).order_by(MetricChunk.series_id, MetricChunk.start)).all()
    points = s.execute(select(MetricPoint.series_id, MetricPoint.at, MetricPoint.value).where(
        MetricPoint.series_id.in_(series_ids), MetricPoint.at >= q.start, MetricPoint.at < q.end,
    ).order_by(MetricPoint.series_id, MetricPoint.at)).all()
    # A bucket's last value is from late in its width: ordered there, a late sample still waiting to
    # be packed into that hour does not become the bucket's last.
    last_offset = 0 if tier is RAW else tier.width // timedelta(milliseconds=1) - 1
    for series_id, start, payload in chunks:
        if tier is RAW:
            times, values = chunk_codec.sample_columns(start, payload)
            found[series_id].add_samples(times, values)
        else:
            found[series_id].add_buckets(*chunk_codec.bucket_columns(start, payload), last_offset=last_offset)
    unpacked: dict[int, tuple[list[int], list[float]]] = {}
    for series_id, at, value in points:
        times, values = unpacked.setdefault(series_id, ([], []))
        times.append(epoch_ms(at))
        values.append(value)
    for series_id, (times, values) in unpacked.items():
        found[series_id].add_samples(times, values)
    return tier, {i: steps.result() for i, steps in found.items()}


class SeriesBuckets(NamedTuple):
    """One series' buckets as columns, oldest first; iterating gives `Bucket`s. Columns, because an
    overview of 100 series at one-minute steps is 144,000 buckets, and an object with a datetime for
    each costs more than reading them did."""

    times: list[int]  # epoch milliseconds of each step's start
    mins: list[float]
    maxs: list[float]
    sums: list[float]
    lasts: list[float]
    counts: list[int]

    def buckets(self) -> list[Bucket]:
        return [Bucket(from_epoch_ms(t), *rest) for t, *rest in
                zip(self.times, self.mins, self.maxs, self.sums, self.lasts, self.counts, strict=True)]


@dataclass(frozen=True)
class _Window:
    start: int
    end: int
    step: int


class _Steps:
    """One series' buckets of the query's step. Each chunk (and the unpacked rows) becomes a segment
    of columns in step order without an object per sample (a 100-series overview reads some 300,000
    of them); segments that follow each other are joined by extending lists, and only overlapping
    ones (a late sample inside a packed hour) are merged step by step."""

    def __init__(self, window: _Window):
        self.window = window
        self.segments: list[tuple[list, ...]] = []  # (steps, mins, maxs, sums, lasts, counts, time of last)

    def add_samples(self, times: list[int], values: list[float]) -> None:
        self.add_buckets(times, values, values, values, values, None)

    def add_buckets(self, times, mins, maxs, sums, lasts, counts, *, last_offset: int = 0) -> None:
        step = self.window.step
        i, hi = bisect_left(times, self.window.start), bisect_left(times, self.window.end)
        if i >= hi:
            return
        width = last_offset + 1  # a rollup's buckets are aligned to its width, and so are steps
        if counts is not None and step == width:
            self.segments.append((times[i:hi], mins[i:hi], maxs[i:hi], sums[i:hi], lasts[i:hi], list(counts[i:hi]),
                                  [t + last_offset for t in times[i:hi]]))
            return
        aligned = bisect_left(times, times[i] + (-times[i]) % step, i, hi)
        k = step // width
        if counts is not None and step % width == 0 and hi - aligned >= k \
                and times[hi - 1] - times[aligned] == (hi - 1 - aligned) * width:
            # A rollup chunk without gaps read at a multiple of its width: every step is the same
            # number of consecutive buckets, folded a column at a time.
            whole = aligned + (hi - aligned) // k * k
            self._by_bisection(times, mins, maxs, sums, lasts, counts, last_offset, i, aligned)
            self.segments.append((times[aligned:whole:k], _groups(min, mins, aligned, whole, k),
                                  _groups(max, maxs, aligned, whole, k), _groups(sum, sums, aligned, whole, k),
                                  lasts[aligned + k - 1:whole:k], _groups(sum, counts, aligned, whole, k),
                                  [t + last_offset for t in times[aligned + k - 1:whole:k]]))
            self._by_bisection(times, mins, maxs, sums, lasts, counts, last_offset, whole, hi)
        else:
            self._by_bisection(times, mins, maxs, sums, lasts, counts, last_offset, i, hi)

    def _by_bisection(self, times, mins, maxs, sums, lasts, counts, last_offset: int, i: int, hi: int) -> None:
        """Sorted times: each step's run of items is found by bisection and folded with the built-in
        min/max/sum over slices, not item by item."""
        step = self.window.step
        rows = []
        while i < hi:
            key = times[i] - times[i] % step
            j = bisect_left(times, key + step, i + 1, hi)
            rows.append((key, min(mins[i:j]), max(maxs[i:j]), sum(sums[i:j]), lasts[j - 1],
                         sum(counts[i:j]) if counts is not None else j - i, times[j - 1] + last_offset))
            i = j
        if rows:
            self.segments.append(tuple(list(column) for column in zip(*rows, strict=True)))

    def result(self) -> SeriesBuckets:
        out: list[list] = [[], [], [], [], [], [], []]
        for segment in self.segments:
            steps = segment[0]
            if out[0] and steps[0] <= out[0][-1]:
                if steps[0] < out[0][-1]:
                    return self._merged()
                # Two chunks share a step across their boundary: fold its two halves.
                row = _combined([c[-1] for c in out], [c[0] for c in segment])
                for column, value in zip(out, row, strict=True):
                    column[-1] = value
                segment = tuple(c[1:] for c in segment)
            for column, part in zip(out, segment, strict=True):
                column.extend(part)
        return SeriesBuckets(*out[:6])

    def _merged(self) -> SeriesBuckets:
        acc: dict[int, list] = {}
        for segment in self.segments:
            for row in zip(*segment, strict=True):
                before = acc.get(row[0])
                acc[row[0]] = list(row) if before is None else _combined(before, row)
        rows = [acc[k] for k in sorted(acc)]
        return SeriesBuckets(*([row[c] for row in rows] for c in range(6)))


def _combined(a, b) -> list:
    """Two folds of one step: (step, min, max, sum, last, count, time of last)."""
    later = b[6] >= a[6]
    return [a[0], min(a[1], b[1]), max(a[2], b[2]), a[3] + b[3], b[4] if later else a[4], a[5] + b[5], max(a[6], b[6])]


def _groups(fold, column, start: int, end: int, k: int) -> list:
    """`fold` of each run of k consecutive items of column[start:end] (whose length k divides)."""
    return list(map(fold, zip(*[iter(column[start:end])] * k, strict=True)))
