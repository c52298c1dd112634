"""Writing samples, packing finished hours into chunks and rollups, and pruning by retention.

Samples land as rows in `metric_points` (cheap to append, a rewrite of the same sample is a no-op
so a retried collection does not count twice). `compact` packs every finished hour of a series
into one raw chunk and folds it into the 1 min, 10 min and 1 h rollups, in one transaction per
series: running it twice, or concurrently with writers, gives the same chunks. Late samples of
an hour already packed are merged into its chunk on the next run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import and_, delete, func, select

from monitor_app.metrics import chunk_codec
from monitor_app.metrics.rollup import RAW, ROLLUPS, floor_time, replace_range, to_buckets
from monitor_app.store.base import Store, upsert_insert
from monitor_app.store.models import MetricChunk, MetricPoint, MetricSeries

RAW_RETENTION = timedelta(hours=48)
ROLLUP_RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class SeriesSample:
    asset_id: int
    name: str
    value: float
    at: datetime
    labels: dict = field(default_factory=dict)


def labels_key(labels: dict) -> str:
    return hashlib.sha1(json.dumps(labels, sort_keys=True, separators=(",", ":")).encode(),  # nosec B324 - an identity, not a secret
                        usedforsecurity=False).hexdigest()


def _insert_ignoring_duplicates(session, model, rows: list[dict], keys: list[str]) -> None:
    session.execute(upsert_insert(session, model).values(rows).on_conflict_do_nothing(index_elements=keys))


_PG_POINTS = "INSERT INTO metric_points (series_id, at, value) VALUES %s ON CONFLICT (series_id, at) DO NOTHING"
_PG_LATEST = ("UPDATE metric_series m SET last_value = v.value, last_at = v.at "
              "FROM (VALUES %s) AS v (id, value, at) WHERE m.id = v.id AND (m.last_at IS NULL OR m.last_at < v.at)")


def _write_points(session, points: list[tuple[int, datetime, float]], latest: list[tuple[int, float, datetime]]):
    """The points and each series' latest value, in two statements whatever the number of series:
    a statement per row (an ORM UPDATE, or executemany on psycopg2) cost a collector more CPU than
    everything else it does."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        from psycopg2.extras import execute_values

        with connection.connection.cursor() as cur:
            execute_values(cur, _PG_POINTS, points, page_size=1000)
            execute_values(cur, _PG_LATEST, latest, template="(%s::bigint, %s::float8, %s::timestamptz)",
                           page_size=1000)
        return
    # SQLite runs in-process: executemany is one prepared statement stepped per row. It goes to the
    # driver directly, with times converted by the column type's own bind processor: SQLAlchemy's
    # per-row parameter handling cost more than the rows themselves.
    at_param = _sqlite_time(connection.dialect)
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(_SQLITE_POINTS, [(i, at_param(at), v) for i, at, v in points])
        cursor.executemany(_SQLITE_LATEST, [(v, at_param(at), i, at_param(at)) for i, v, at in latest])
    finally:
        cursor.close()


_SQLITE_POINTS = "INSERT INTO metric_points (series_id, at, value) VALUES (?, ?, ?) ON CONFLICT (series_id, at) DO NOTHING"
_SQLITE_LATEST = ("UPDATE metric_series SET last_value = ?, last_at = ? "
                  "WHERE id = ? AND (last_at IS NULL OR last_at < ?)")


def _sqlite_time(dialect) -> Callable[[datetime], object]:
    # The dialect's own implementation: the column type's conversion, then SQLite's text form.
    bind = MetricPoint.__table__.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    return bind if bind is not None else (lambda value: value)


class SeriesWriter:
    """Appends samples; remembers series ids so a steady collector resolves each series once."""

    def __init__(self, store: Store):
        self.store = store
        self._ids: dict[tuple[int, str, str], int] = {}
        self._keys: dict[tuple, tuple[int, str, str]] = {}

    def write(self, samples: list[SeriesSample]) -> int:
        if not samples:
            return 0
        try:
            with self.store.session() as s:
                return self.write_in(s, samples)
        except Exception:
            self.forget()
            raise

    def forget(self) -> None:
        """After a unit of work that wrote through `write_in` rolled back: series it created are gone."""
        self._ids.clear()

    def write_in(self, s, samples: list[SeriesSample]) -> int:
        """`write` inside the caller's unit of work, so a collector stores its samples and its own
        state in one transaction."""
        if samples:
            ids = self._series_ids(s, samples)
            # The first sample written for a time is the one kept, in the rows and in the latest value.
            points: dict[tuple[int, datetime], float] = {}
            latest: dict[int, SeriesSample] = {}
            for i, x in enumerate(samples):
                points.setdefault((ids[i], x.at), float(x.value))
                if ids[i] not in latest or x.at > latest[ids[i]].at:
                    latest[ids[i]] = x
            _write_points(s, [(i, at, v) for (i, at), v in points.items()],
                          [(i, float(x.value), x.at) for i, x in latest.items()])
        return len(samples)

    def _series_ids(self, s, samples: list[SeriesSample]) -> list[int]:
        keys = [self._key(x) for x in samples]
        unknown = {k: x for k, x in zip(keys, samples, strict=True) if k not in self._ids}
        if unknown:
            _insert_ignoring_duplicates(s, MetricSeries, [
                {"asset_id": a, "name": n, "labels_key": k, "labels": x.labels} for (a, n, k), x in unknown.items()
            ], ["asset_id", "name", "labels_key"])
            for a, n, k in unknown:
                self._ids[(a, n, k)] = s.scalar(select(MetricSeries.id).where(
                    MetricSeries.asset_id == a, MetricSeries.name == n, MetricSeries.labels_key == k))
        return [self._ids[k] for k in keys]

    def _key(self, x: SeriesSample) -> tuple[int, str, str]:
        # Most samples have no labels or a few short ones: their digest is remembered, not recomputed.
        try:
            cheap = (x.asset_id, x.name, tuple(sorted(x.labels.items())))
            key = self._keys.get(cheap)
        except TypeError:  # a label value that cannot be hashed: digest it every time
            return (x.asset_id, x.name, labels_key(x.labels))
        if key is None:
            key = self._keys[cheap] = (x.asset_id, x.name, labels_key(x.labels))
        return key


def compact(store: Store, now: datetime) -> dict:
    """Pack every finished hour of unpacked points; returns how many series and samples moved."""
    cutoff = floor_time(now, RAW.chunk_span)
    with store.session() as s:
        series_ids = s.scalars(select(MetricPoint.series_id).where(MetricPoint.at < cutoff)
                               .group_by(MetricPoint.series_id).order_by(MetricPoint.series_id)).all()
    moved = 0
    for series_id in series_ids:
        with store.session() as s:
            moved += _compact_series(s, series_id, cutoff)
    return {"series": len(series_ids), "samples": moved}


def _compact_series(s, series_id: int, cutoff: datetime) -> int:
    points = s.execute(select(MetricPoint.at, MetricPoint.value).where(
        MetricPoint.series_id == series_id, MetricPoint.at < cutoff).order_by(MetricPoint.at)).all()
    # An hour whose raw chunk is past retention cannot be re-folded whole: its rollups would be
    # replaced by the few late samples alone, so those are dropped instead.
    oldest = cutoff - RAW_RETENTION
    by_hour: dict[datetime, list[tuple[datetime, float]]] = {}
    for at, value in points:
        if at >= oldest:
            by_hour.setdefault(floor_time(at, RAW.chunk_span), []).append((at, value))
    for hour, samples in by_hour.items():
        samples = _merge_into_raw_chunk(s, series_id, hour, samples)
        for tier in ROLLUPS:
            _fold_into_rollup(s, series_id, tier, hour, to_buckets(samples, tier.width))
    s.execute(delete(MetricPoint).where(MetricPoint.series_id == series_id, MetricPoint.at < cutoff))
    return len(points)


def _chunk(s, series_id: int, tier: str, start: datetime) -> MetricChunk | None:
    return s.get(MetricChunk, (series_id, tier, start))


def _merge_into_raw_chunk(s, series_id: int, hour: datetime, samples: list) -> list:
    chunk = _chunk(s, series_id, RAW.name, hour)
    if chunk is not None:
        merged = dict(chunk_codec.decode_samples(hour, chunk.payload))
        merged.update(samples)
        samples = sorted(merged.items())
    payload = chunk_codec.encode_samples(hour, samples)
    _put_chunk(s, chunk, series_id, RAW.name, hour, samples[-1][0], len(samples), payload)
    return samples


def _fold_into_rollup(s, series_id: int, tier, hour: datetime, buckets: list) -> None:
    start = floor_time(hour, tier.chunk_span)
    chunk = _chunk(s, series_id, tier.name, start)
    kept = chunk_codec.decode_buckets(start, chunk.payload) if chunk is not None else []
    merged = replace_range(kept, buckets, hour, hour + RAW.chunk_span)
    payload = chunk_codec.encode_buckets(start, merged)
    _put_chunk(s, chunk, series_id, tier.name, start, merged[-1].start, sum(b.samples for b in merged), payload)


def _put_chunk(s, chunk, series_id, tier, start, end_at, count, payload) -> None:
    if chunk is None:
        s.add(MetricChunk(series_id=series_id, tier=tier, start=start, end_at=end_at, count=count, payload=payload))
    else:
        chunk.end_at, chunk.count, chunk.payload = end_at, count, payload
    s.flush()


def prune(store: Store, now: datetime, raw_retention: timedelta = RAW_RETENTION,
          rollup_retention: timedelta = ROLLUP_RETENTION) -> dict:
    """Drop raw chunks past their window, rollup chunks whose newest bucket is past 90 days, and
    series nothing has been written to for as long."""
    with store.session() as s:
        raw = _deleted(s, delete(MetricChunk).where(
            MetricChunk.tier == RAW.name, MetricChunk.start < now - raw_retention - RAW.chunk_span))
        rollups = _deleted(s, delete(MetricChunk).where(
            MetricChunk.tier != RAW.name, MetricChunk.end_at < now - rollup_retention))
        unpacked = select(MetricPoint.series_id).where(MetricPoint.series_id == MetricSeries.id)
        packed = select(MetricChunk.series_id).where(MetricChunk.series_id == MetricSeries.id)
        series = _deleted(s, delete(MetricSeries).where(and_(
            MetricSeries.last_at < now - rollup_retention, ~unpacked.exists(), ~packed.exists())))
    return {"raw_chunks": raw, "rollup_chunks": rollups, "series": series}


def _deleted(s, statement) -> int:
    result: Any = s.execute(statement)
    return result.rowcount


def stored_bytes(store: Store, tier: str) -> tuple[int, int]:
    """(payload bytes, samples) of a tier: what a sample costs once packed."""
    with store.session() as s:
        size, count = s.execute(select(func.coalesce(func.sum(func.length(MetricChunk.payload)), 0),
                                       func.coalesce(func.sum(MetricChunk.count), 0))
                                .where(MetricChunk.tier == tier)).one()
    return int(size), int(count)
