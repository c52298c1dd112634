"""Metric storage: bytes per stored sample, and range queries over 90 days, on both stores.

    python -m bench.metrics_storage [--runs 30]

1. A day of 200 series every 10 s (counters, gauges, flat lines) written through `SeriesWriter` and
   packed by `compact`: payload bytes per raw sample, and the chunk table's size on disk per sample
   on PostgreSQL (rows, TOAST and index included). Target ≤ 16 B.
2. 90 days of rollups for 100 series, chunks encoded as compaction writes them (generating 78 M raw
   samples to compact would take hours); then one series over 90 days at a 1 h step, and 100 series
   over 90 days at a 6 h step and over 24 h at 5 min (a dashboard's 288 points) and 1 min steps:
   p50/p99 over `--runs`. Targets: one series p99 < 100 ms, 100-series overview p99 < 500 ms.

Writes bench/results/metrics_storage.json.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import summary, write  # noqa: E402
from monitor_app.metrics import chunk_codec  # noqa: E402
from monitor_app.metrics.chunk_codec import Bucket  # noqa: E402
from monitor_app.metrics.rollup import ROLLUPS, floor_time  # noqa: E402
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter, compact, stored_bytes  # noqa: E402
from monitor_app.metrics.series_query import Query, read_series  # noqa: E402
from monitor_app.store import Store  # noqa: E402
from monitor_app.store.base import utcnow  # noqa: E402
from monitor_app.store.migrate import upgrade  # noqa: E402
from monitor_app.store.models import Asset, MetricChunk, MetricSeries  # noqa: E402
from tests.services import create_pg_database, drop_pg_database  # noqa: E402

SERIES_RAW = 200
SERIES_ROLLUP = 100


def _asset(store: Store) -> int:
    with store.session() as s:
        a = Asset(kind="database", engine="postgresql", name="bench", source="config", external_id="bench",
                  labels={}, connection={}, details={}, status="up")
        s.add(a)
        s.flush()
        return a.id


def _series_values(kind: int, rng: random.Random):
    """A counter, a noisy gauge or a flat line: what a PostgreSQL poll yields."""
    state = {"v": rng.uniform(0, 1e6)}

    def nxt() -> float:
        if kind == 0:
            state["v"] += rng.randint(0, 500)
        elif kind == 1:
            state["v"] = round(50 + rng.gauss(0, 5), 2)
        return state["v"]
    return nxt


def raw_day(store: Store, asset: int) -> dict:
    rng = random.Random(1)
    start = floor_time(utcnow(), timedelta(days=1)) - timedelta(days=2)
    writer = SeriesWriter(store)
    for i in range(SERIES_RAW):
        nxt = _series_values(i % 3, rng)
        for hour in range(24):
            writer.write([SeriesSample(asset, f"bench.m{i}", nxt(), start + timedelta(hours=hour, seconds=10 * k))
                          for k in range(360)])
    t = time.perf_counter()
    packed = compact(store, start + timedelta(days=1, minutes=1))
    compact_s = time.perf_counter() - t
    payload, samples = stored_bytes(store, "raw")
    out = {"series": SERIES_RAW, "samples": samples, "payload_bytes_per_sample": round(payload / samples, 2),
           "compact_seconds": round(compact_s, 2), "compacted": packed}
    if store.url.startswith("postgresql"):
        # Rollup chunks are rewritten once per packed hour; what stays on disk is measured after VACUUM.
        with store.sql_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM metric_chunks")
            raw_rows = c.exec_driver_sql(
                "SELECT sum(pg_column_size(metric_chunks.*)) FROM metric_chunks WHERE tier = 'raw'").scalar()
            total = c.exec_driver_sql("SELECT pg_total_relation_size('metric_chunks')").scalar()
            rollup_bytes = c.exec_driver_sql(
                "SELECT coalesce(sum(length(payload)), 0) FROM metric_chunks WHERE tier <> 'raw'").scalar()
        out["raw_row_bytes_per_sample"] = round(raw_rows / samples, 2)
        out["table_bytes_per_raw_sample_with_rollups_and_free_space"] = round(total / samples, 2)
        out["rollup_payload_bytes"] = int(rollup_bytes)
    return out


def ninety_days(store: Store, asset: int, runs: int) -> dict:
    rng = random.Random(2)
    now = utcnow()
    begin = now - timedelta(days=90)
    with store.session() as s:
        ids = []
        for i in range(SERIES_ROLLUP):
            series = MetricSeries(asset_id=asset, name=f"bench.r{i}", labels={}, labels_key=f"{i:040d}")
            s.add(series)
            s.flush()
            ids.append(series.id)
    # One payload per chunk position, shared by every series: decoding costs the same whatever the
    # values, and generating 13 M one-minute buckets per series would dominate the run.
    for tier in ROLLUPS:
        chunk_start = floor_time(begin, tier.chunk_span)
        with store.session() as s:
            while chunk_start < now:
                buckets = []
                t = chunk_start
                while t < min(chunk_start + tier.chunk_span, now):
                    v = rng.uniform(0, 100)
                    buckets.append(Bucket(t, v - 1, v + 1, v * 6, v, 6))
                    t += tier.width
                payload = chunk_codec.encode_buckets(chunk_start, buckets)
                s.add_all(MetricChunk(series_id=series_id, tier=tier.name, start=chunk_start, end_at=buckets[-1].start,
                                      count=6 * len(buckets), payload=payload) for series_id in ids)
                s.flush()
                chunk_start += tier.chunk_span
    cases = {"one_series_90d_1h": ([ids[0]], Query(begin, now, timedelta(hours=1))),
             "100_series_90d_6h": (ids, Query(begin, now, timedelta(hours=6))),
             "100_series_24h_5m": (ids, Query(now - timedelta(days=1), now, timedelta(minutes=5))),
             "100_series_24h_1m": (ids, Query(now - timedelta(days=1), now, timedelta(minutes=1)))}
    out = {}
    for name, (series_ids, q) in cases.items():
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            tier, got = read_series(store, series_ids, q, now)
            times.append((time.perf_counter() - t) * 1000)
        out[name] = {"tier": tier.name, "buckets_per_series": len(got[series_ids[0]]),
                     "ms": {k: round(v, 1) for k, v in summary(times).items()}}
    return out


def run(store_url: str, runs: int, raw: bool) -> dict:
    upgrade(store_url)
    store = Store(store_url)
    try:
        asset = _asset(store)
        return {"raw_day": raw_day(store, asset) if raw else None, "queries": ninety_days(store, asset, runs)}
    finally:
        store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--queries-only", action="store_true", help="skip the day of raw samples (minutes)")
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run(f"sqlite:///{tmp}/bench.sqlite3", args.runs, not args.queries_only)
    name, url = create_pg_database("dbmon_bench")
    try:
        results["postgresql"] = run(url.replace("postgresql://", "postgresql+psycopg2://", 1), args.runs,
                                    not args.queries_only)
    finally:
        drop_pg_database(name)
    print(write("metrics_storage", results))
    for store, r in results.items():
        print(store, r["raw_day"], {k: (v["tier"], v["ms"]["median"], v["ms"]["p99"]) for k, v in r["queries"].items()})


if __name__ == "__main__":
    main()
