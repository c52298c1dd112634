"""Series storage on both stores: samples in, finished hours packed and rolled up, read back by range."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from monitor_app.metrics import chunk_codec
from monitor_app.metrics.chunk_codec import Bucket, ChunkError
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter, compact, prune, stored_bytes
from monitor_app.metrics.series_query import Query, pick_tier, read_series
from monitor_app.store.models import Asset, MetricChunk, MetricPoint, MetricSeries

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)


def add_asset(store, name="orders-db") -> int:
    with store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name=name, source="config", external_id=name,
                      labels={}, connection={}, details={}, status="up")
        s.add(asset)
        s.flush()
        return asset.id


def steady(asset_id: int, start: datetime, count: int, every: float = 10.0, name: str = "pg.xact_commit",
           value=lambda i: 1000.0 + 3 * i) -> list[SeriesSample]:
    return [SeriesSample(asset_id, name, value(i), start + timedelta(seconds=every * i)) for i in range(count)]


def test_the_codec_round_trips_exactly_and_refuses_corrupt_chunks():
    rng = random.Random(7)
    at, samples = T0, []
    for _ in range(500):
        at += timedelta(milliseconds=rng.randint(1, 20_000))
        samples.append((at, rng.choice([0.0, -1.5, math.inf, 1e300, rng.random() * 1e6])))
    payload = chunk_codec.encode_samples(T0, samples)
    assert chunk_codec.decode_samples(T0, payload) == samples
    buckets = [Bucket(T0 + timedelta(minutes=i), i - 1.0, i + 1.0, 3.0 * i, float(i), 3) for i in range(60)]
    assert chunk_codec.decode_buckets(T0, chunk_codec.encode_buckets(T0, buckets)) == buckets
    for corrupt in (payload[:-3], b"\x01", payload[:5] + b"garbage"):
        with pytest.raises(ChunkError):
            chunk_codec.decode_samples(T0, corrupt)
    with pytest.raises(ChunkError):
        chunk_codec.encode_samples(T0, list(reversed(samples)))


def test_a_steady_counter_packs_into_a_few_bytes_per_sample():
    samples = [(T0 + timedelta(seconds=10 * i), 1e6 + 17.0 * i + (i % 7)) for i in range(360)]
    assert len(chunk_codec.encode_samples(T0, samples)) / len(samples) < 4


def test_a_rewritten_sample_is_kept_once_and_the_latest_value_follows_time(store):
    asset = add_asset(store)
    writer = SeriesWriter(store)
    batch = steady(asset, T0, 3)
    writer.write(batch)
    writer.write(batch[:2])  # a retried collection
    SeriesWriter(store).write([SeriesSample(asset, "pg.xact_commit", -1.0, T0 - timedelta(hours=1))])  # late
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(MetricPoint)) == 4
        series = s.scalars(select(MetricSeries)).all()
    assert [(x.name, x.last_value, x.last_at) for x in series] == [("pg.xact_commit", 1006.0, T0 + timedelta(seconds=20))]


def test_labels_make_separate_series(store):
    asset = add_asset(store)
    SeriesWriter(store).write([SeriesSample(asset, "pg.locks", 1, T0, {"mode": "AccessShareLock"}),
                               SeriesSample(asset, "pg.locks", 2, T0, {"mode": "RowExclusiveLock"}),
                               SeriesSample(asset, "pg.locks", 3, T0, {"mode": "AccessShareLock"})])
    with store.session() as s:
        rows = {(x.labels["mode"], x.last_value) for x in s.scalars(select(MetricSeries))}
    assert rows == {("AccessShareLock", 1.0), ("RowExclusiveLock", 2.0)}


def test_finished_hours_are_packed_rolled_up_and_read_back_the_same(store):
    asset = add_asset(store)
    values = lambda i: float((i * 37) % 101)  # noqa: E731 - a deterministic wiggle
    samples = steady(asset, T0, 3 * 360 + 30, value=values)  # three hours and five minutes
    SeriesWriter(store).write(samples)
    now = T0 + timedelta(hours=3, minutes=5)
    assert compact(store, now) == {"series": 1, "samples": 3 * 360}
    assert compact(store, now) == {"series": 0, "samples": 0}  # nothing left to pack
    with store.session() as s:
        chunks = {(c.tier, c.start): c.count for c in s.scalars(select(MetricChunk))}
        left = s.scalar(select(func.count()).select_from(MetricPoint))
        series_id = s.scalar(select(MetricSeries.id))
    assert chunks == {("raw", T0): 360, ("raw", T0 + timedelta(hours=1)): 360, ("raw", T0 + timedelta(hours=2)): 360,
                      ("1m", T0): 1080, ("10m", datetime(2026, 11, 26, tzinfo=timezone.utc)): 1080,
                      ("1h", datetime(2026, 11, 3, tzinfo=timezone.utc)): 1080}
    assert left == 30

    # Ten-minute buckets over the whole range, from the 10 min tier plus the unpacked rows.
    q = Query(T0, now, timedelta(minutes=10))
    tier, got = read_series(store, [series_id], q, now)
    assert tier.name == "10m"
    expected = []
    for k in range(19):
        vals = [values(i) for i in range(60 * k, min(60 * (k + 1), len(samples)))]
        expected.append((T0 + timedelta(minutes=10 * k), min(vals), max(vals), sum(vals) / len(vals), vals[-1], len(vals)))
    assert [(b.start, b.min, b.max, b.avg, b.last, b.samples) for b in got[series_id].buckets()] == expected

    # Raw samples at 10 s for the last hour and a half: packed and unpacked alike.
    q = Query(now - timedelta(minutes=90), now, timedelta(seconds=10))
    tier, got = read_series(store, [series_id], q, now)
    assert tier.name == "raw"
    first = 95 * 6  # the sample at 01:35
    assert [b.last for b in got[series_id].buckets()] == [values(i) for i in range(first, len(samples))]


def test_late_samples_join_their_packed_hour(store):
    asset = add_asset(store)
    writer = SeriesWriter(store)
    writer.write(steady(asset, T0, 360))
    compact(store, T0 + timedelta(hours=1, minutes=1))
    writer.write([SeriesSample(asset, "pg.xact_commit", 5000.0, T0 + timedelta(seconds=5))])
    compact(store, T0 + timedelta(hours=1, minutes=2))
    with store.session() as s:
        series_id = s.scalar(select(MetricSeries.id))
    _, got = read_series(store, [series_id], Query(T0, T0 + timedelta(hours=1), timedelta(hours=1)),
                         T0 + timedelta(days=10))
    (hour,) = got[series_id].buckets()
    assert (hour.samples, hour.max) == (361, 5000.0)


def test_a_late_sample_not_yet_packed_is_read_inside_its_step_and_the_last_value_stays_the_latest(store):
    asset = add_asset(store)
    writer = SeriesWriter(store)
    writer.write(steady(asset, T0, 360))
    compact(store, T0 + timedelta(hours=1, minutes=1))
    writer.write([SeriesSample(asset, "pg.xact_commit", 5000.0, T0 + timedelta(seconds=5)),
                  SeriesSample(asset, "pg.other", 1.0, T0 + timedelta(days=3))])
    with store.session() as s:
        ids = dict(s.execute(select(MetricSeries.name, MetricSeries.id)).all())
    q = Query(T0, T0 + timedelta(hours=1), timedelta(minutes=10))
    _, got = read_series(store, list(ids.values()), q, T0 + timedelta(hours=2))
    first, *rest = got[ids["pg.xact_commit"]].buckets()
    assert (first.samples, first.max, first.min, first.last) == (61, 5000.0, 1000.0, 1000.0 + 3 * 59)
    assert [b.samples for b in rest] == [60] * 5 and rest[-1].last == 1000.0 + 3 * 359
    assert got[ids["pg.other"]].buckets() == [] and got[ids["pg.other"]].times == []


def test_the_tier_follows_the_range_and_the_step():
    now = T0
    assert pick_tier(Query(now - timedelta(hours=1), now, timedelta(seconds=10)), now).name == "raw"
    assert pick_tier(Query(now - timedelta(days=3), now - timedelta(days=2), timedelta(seconds=10)), now).name == "1m"
    assert pick_tier(Query(now - timedelta(days=1), now, timedelta(minutes=5)), now).name == "1m"
    assert pick_tier(Query(now - timedelta(days=7), now, timedelta(minutes=30)), now).name == "10m"
    assert pick_tier(Query(now - timedelta(days=90), now, timedelta(hours=6)), now).name == "1h"
    # Ninety days at a one-minute step would be 129,600 buckets: the tier is coarsened until it fits.
    assert pick_tier(Query(now - timedelta(days=90), now, timedelta(minutes=1)), now).name == "10m"
    assert pick_tier(Query(now - timedelta(days=900), now, timedelta(minutes=1)), now).name == "1h"


def test_retention_drops_raw_after_two_days_and_rollups_after_ninety(store):
    asset = add_asset(store)
    writer = SeriesWriter(store)
    writer.write(steady(asset, T0, 360))
    compact(store, T0 + timedelta(hours=1, minutes=1))
    assert prune(store, T0 + timedelta(hours=48)) == {"raw_chunks": 0, "rollup_chunks": 0, "series": 0}
    assert prune(store, T0 + timedelta(hours=50, minutes=1)) == {"raw_chunks": 1, "rollup_chunks": 0, "series": 0}
    assert stored_bytes(store, "raw") == (0, 0)
    assert prune(store, T0 + timedelta(days=91)) == {"raw_chunks": 0, "rollup_chunks": 3, "series": 1}
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(MetricSeries)) == 0


def test_the_tasks_pack_on_schedule_and_prune_by_the_configured_windows(store, tmp_path):
    from beat_schedule import entries
    from monitor_app.config.settings import load_settings
    from monitor_app.platform.runtime import Runtime
    from monitor_app.store.base import utcnow
    from workers.tasks.maintenance import prune as prune_task
    from workers.tasks.metrics import compact as compact_task

    settings = load_settings(data_dir=tmp_path, database_url=store.url, secret_key="k", metrics_raw_retention_hours=2)
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    assert entries(settings)["metrics-compact"]["task"] == "metrics.compact"
    asset = add_asset(store)
    hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    SeriesWriter(store).write(steady(asset, hour, 360))
    assert compact_task.domain_fn(rt) == {"series": 1, "samples": 360}
    assert stored_bytes(store, "raw")[1] == 360
    result = prune_task.domain_fn(rt)
    assert (result["metric_raw_chunks"], result["metric_rollup_chunks"]) == (1, 0)
    with store.session() as s:
        assert {c.tier for c in s.scalars(select(MetricChunk))} == {"1m", "10m", "1h"}
