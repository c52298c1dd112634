"""Page render times: the asset page and its charts' JSON over 90 days of data, on both stores.

    python -m bench.pages_render [--runs 30] [--sqlite-only]

A store is filled as 50 assets would leave it after 90 days: 30 PostgreSQL databases (10 series:
TPS, connections, cache hit ratio, WAL bytes/s, locks by mode, replication lag, size), 10
PostgreSQL containers (those plus container CPU and memory), 10 SQLite files (5 series): 470
series, each with 1-minute, 10-minute and hourly rollups over 90 days, raw chunks of the last 48
hours at 10 s and the current hour as unpacked rows. Chunks are encoded as compaction
writes them, one payload per (shape, tier, chunk) shared by the series of that shape (as in
`bench/metrics_storage.py`: generating and compacting 40 M raw samples would take hours, and
decoding costs the same whatever the values). Around them: 200 events per asset, 20 schema change
sets, a file watch with 300 changes and 30 backups, 15 alerts in 8 incidents, anomaly windows on
every series, and a forecast rule on the database size.

Measured through the Flask app in-process (a viewer's API key per request, as the pages accept
it), p50/p99 over `--runs` requests cycling through the assets: `/assets/<id>` at the default
range (24 h) and at each other range, `/assets/<id>/series.json` for all of a page's charts at each
range (what choosing a range costs), and the overview `/` if that page is installed. Every chart
is checked to hold at most 1,000 points per series. The load average before and after is kept
with the results: on a shared machine it explains most of the spread. Writes
bench/results/pages_render.json.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bench.stats import summary, write  # noqa: E402
from monitor_app.access.api_keys import create_key  # noqa: E402
from monitor_app.config.settings import load_settings  # noqa: E402
from monitor_app.metrics import chunk_codec  # noqa: E402
from monitor_app.metrics.chunk_codec import Bucket  # noqa: E402
from monitor_app.metrics.rollup import RAW, ROLLUPS, floor_time  # noqa: E402
from monitor_app.metrics.sample_store import labels_key  # noqa: E402
from monitor_app.platform.runtime import Runtime  # noqa: E402
from monitor_app.status.chart_data import MAX_POINTS, RANGES  # noqa: E402
from monitor_app.store.base import Store, utcnow  # noqa: E402
from monitor_app.store.migrate import upgrade  # noqa: E402
from monitor_app.store.models import Asset, Event, MetricChunk, MetricPoint, MetricSeries  # noqa: E402
from monitor_app.store.models.alerting import Alert, Incident  # noqa: E402
from monitor_app.store.models.analysis import MetricAnomaly  # noqa: E402
from monitor_app.store.models.files import FileBackup, FileChange, FileWatch  # noqa: E402
from monitor_app.store.models.schema import SchemaChange, SchemaChangeSet  # noqa: E402
from tests.services import create_pg_database, drop_pg_database  # noqa: E402

DAYS = 90
LOCK_MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ExclusiveLock")
PG_SERIES = [("pg.transactions_per_second", {}, "rate"), ("pg.connections", {}, "level"),
             ("pg.cache_hit_ratio", {}, "ratio"), ("pg.wal_bytes_per_second", {}, "rate"),
             *[("pg.locks", {"mode": m}, "level") for m in LOCK_MODES],
             ("pg.replication_lag_seconds", {"application_name": "replica-1"}, "level"),
             ("pg.database_size_bytes", {}, "growth")]
SERIES_BY_KIND = {"postgresql": PG_SERIES,
                  "container": PG_SERIES + [("container.cpu_percent", {}, "ratio"),
                                            ("container.memory_bytes", {}, "level")],
                  "sqlite": [("sqlite.file_bytes", {}, "growth"), ("sqlite.wal_bytes", {}, "level"),
                             ("sqlite.write_transactions_per_s", {}, "rate"), ("sqlite.freelist_ratio", {}, "ratio"),
                             ("file.bytes", {"kind": "data"}, "growth")]}
ASSET_KINDS = ["postgresql"] * 30 + ["container"] * 10 + ["sqlite"] * 10
FORECAST_RULE = {"name": "DatabaseOutgrowsVolume", "kind": "forecast", "metric": "pg.database_size_bytes",
                 "threshold": 5e11, "lead_time": "7d", "window": "24h", "severity": "warning"}


def shape_value(shape: str, t: datetime, rng: random.Random) -> float:
    """A daily cycle with noise, or steady growth: what the series of each kind look like."""
    day = math.sin(2 * math.pi * (t.timestamp() % 86400) / 86400)
    if shape == "growth":
        return 1e9 + t.timestamp() % (DAYS * 86400) * 40 + rng.uniform(0, 1e5)
    if shape == "ratio":
        return round(0.9 + 0.05 * day + rng.uniform(0, 0.04), 4)
    if shape == "rate":
        return round(max(0.0, 400 + 300 * day + rng.gauss(0, 40)), 1)
    return float(max(0, round(20 + 10 * day + rng.gauss(0, 3))))


def _bulk(store: Store, model, rows: list[dict], batch: int = 2000) -> None:
    with store.session() as s:
        for i in range(0, len(rows), batch):
            s.execute(insert(model), rows[i:i + batch])


def fill_series(store: Store, series: list[tuple[int, str]], now: datetime) -> None:
    """Rollups up to the current hour, raw chunks of the last 48 h, the current hour as rows."""
    rng = random.Random(7)
    hour = floor_time(now, RAW.chunk_span)
    for tier in ROLLUPS:
        payloads = {}
        for shape in {sh for _, sh in series}:
            start = floor_time(now - timedelta(days=DAYS), tier.chunk_span)
            while start < hour:
                end = min(start + tier.chunk_span, hour)
                steps = int((end - start) / tier.width)
                buckets = [Bucket(t, v * 0.9, v * 1.1, v * 6, v, 6) for t, v in
                           ((start + i * tier.width, shape_value(shape, start + i * tier.width, rng)) for i in range(steps))]
                payloads[(shape, start)] = (buckets[-1].start, 6 * steps, chunk_codec.encode_buckets(start, buckets))
                start += tier.chunk_span
        _bulk(store, MetricChunk, [{"series_id": sid, "tier": tier.name, "start": start, "end_at": end_at,
                                    "count": count, "payload": payload}
                                   for sid, shape in series for (sh, start), (end_at, count, payload) in payloads.items()
                                   if sh == shape], batch=200)
    raw = {}
    for shape in {sh for _, sh in series}:
        for h in range(48, 0, -1):
            start = hour - timedelta(hours=h)
            samples = [(start + timedelta(seconds=10 * k), shape_value(shape, start + timedelta(seconds=10 * k), rng))
                       for k in range(360)]
            raw[(shape, start)] = (samples[-1][0], chunk_codec.encode_samples(start, samples))
    _bulk(store, MetricChunk, [{"series_id": sid, "tier": RAW.name, "start": start, "end_at": end_at, "count": 360,
                                "payload": payload}
                               for sid, shape in series for (sh, start), (end_at, payload) in raw.items() if sh == shape])
    current = int((now - hour).total_seconds() // 10)
    _bulk(store, MetricPoint, [{"series_id": sid, "at": hour + timedelta(seconds=10 * k),
                                "value": shape_value(shape, hour + timedelta(seconds=10 * k), rng)}
                               for sid, shape in series for k in range(current)])


def fill_history(store: Store, asset_id: int, kind: str, series_ids: list[int], now: datetime, rng: random.Random):
    """Events, schema change sets, files, alerts and incidents, anomaly windows of one asset."""
    ago = lambda: now - timedelta(seconds=rng.uniform(0, DAYS * 86400))  # noqa: E731
    types = ["container.start", "container.die", "asset.up", "asset.down", "schema.changed", "file.modified"]
    _bulk(store, Event, [{"type": rng.choice(types), "severity": "info", "asset_id": asset_id, "summary": "event",
                          "payload": {}, "observed_at": (at := ago()), "detected_at": at} for _ in range(200)])
    with store.session() as s:
        for v in range(20):
            cs = SchemaChangeSet(asset_id=asset_id, from_version=v + 1, to_version=v + 2, detected_at=ago(),
                                 max_risk=rng.choice(("low", "medium", "high")), change_count=4,
                                 context={"source": "trigger", "users": ["app"], "application_names": ["migrate"],
                                          "command_tags": ["ALTER TABLE"]})
            s.add(cs)
            s.flush()
            s.add_all(SchemaChange(change_set_id=cs.id, asset_id=asset_id, detected_at=cs.detected_at,
                                   action="modified", object_type="column", object=f"public.t{v}.c{c}", risk="medium",
                                   detail={"before": {"type": "integer"}, "after": {"type": "bigint"},
                                           "why": "rewrites the table", "category": "type", "rule": "type-change"})
                      for c in range(4))
        watch = FileWatch(key=f"bench-{asset_id}", path=f"/srv/db-{asset_id}", source="config", asset_id=asset_id,
                          kinds=["config", "backup"], spec={}, status="ok", entries=40, total_bytes=10**8)
        s.add(watch)
        s.flush()
        watch_id = watch.id
        incidents = [Incident(group_key=f"g{asset_id}-{i}", title=f"incident {i}", status="resolved", opened_at=ago())
                     for i in range(8)]
        s.add_all(incidents)
        s.flush()
        s.add_all(Alert(fingerprint=f"{asset_id:08d}{i:024d}", rule=f"Rule{i}", state="firing" if i < 2 else "resolved",
                        asset_id=asset_id, incident_id=incidents[i % 8].id, last_seen_at=ago(),
                        annotations={"summary": "something happened"}) for i in range(15))
    _bulk(store, FileChange, [{"watch_id": watch_id, "asset_id": asset_id, "path": f"/srv/db-{asset_id}/f{i}.conf",
                               "type": "config_changed", "severity": "info", "fields": ["sha256"], "reason": "event",
                               "diff": [{"parameter": "work_mem", "change": "modified", "old": "4MB", "new": "8MB",
                                         "risk": "low", "reason": "", "restart_required": False}],
                               "observed_at": ago()} for i in range(300)])
    _bulk(store, FileBackup, [{"watch_id": watch_id, "path_key": f"{i:040d}", "path": f"/srv/backups/{i}.dump",
                               "size": 10**9, "mtime_ns": 0, "state": "completed", "first_seen_at": ago(),
                               "completed_at": now} for i in range(30)])
    _bulk(store, MetricAnomaly, [{"rule": "WorkloadAnomaly", "kind": "anomaly", "series_id": sid, "asset_id": asset_id,
                                  "metric": "m", "start": (at := ago() if k else now - timedelta(hours=3)),
                                  "end_at": at + timedelta(minutes=30), "direction": "up", "score": 7.0,
                                  "baseline": 1.0, "peak": 2.0, "adapted": False}
                                 for sid in series_ids for k in range(4)])


def build(url: str) -> tuple[Store, list[int], dict]:
    upgrade(url)
    store = Store(url)
    now = utcnow()
    rng = random.Random(3)
    started = time.perf_counter()
    all_series: list[tuple[int, str]] = []
    assets: list[int] = []
    for i, kind in enumerate(ASSET_KINDS):
        with store.session() as s:
            engine = "sqlite" if kind == "sqlite" else "postgresql"
            asset = Asset(kind="database", engine=engine, name=f"{kind}-{i}", source="docker" if kind == "container"
                          else "config", external_id=f"bench-{i}", labels={"team": "bench"}, connection={"host": "db"},
                          details={}, status="up")
            s.add(asset)
            s.flush()
            rows = [MetricSeries(asset_id=asset.id, name=name, labels=labels, labels_key=labels_key(labels),
                                 last_value=1.0, last_at=now) for name, labels, _ in SERIES_BY_KIND[kind]]
            s.add_all(rows)
            s.flush()
            ids = [r.id for r in rows]
            assets.append(asset.id)
        all_series += [(sid, shape) for sid, (_, _, shape) in zip(ids, SERIES_BY_KIND[kind], strict=True)]
        fill_history(store, asset.id, kind, ids, now, rng)
    fill_series(store, all_series, now)
    return store, assets, {"assets": len(assets), "series": len(all_series), "days": DAYS,
                           "generate_seconds": round(time.perf_counter() - started, 1)}


def timed(client, paths: list[str], headers: dict, runs: int, check=None) -> dict:
    for path in paths[:3]:  # warm-up: templates compiled, connections open
        client.get(path, headers=headers)
    times, sizes = [], []
    for i in range(runs):
        path = paths[i % len(paths)]
        t = time.perf_counter()
        resp = client.get(path, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True)[:300])
        sizes.append(len(resp.data))
        if check:
            check(resp)
    return {**{k: round(v, 1) for k, v in summary(times).items()}, "median_bytes": int(statistics.median(sizes))}


def _within_points(resp) -> None:
    worst = max((c["points"] for c in resp.json["charts"]), default=0)
    assert worst <= MAX_POINTS, worst


def measure(url: str, runs: int, tmp: Path) -> dict:
    from api import create_app

    store, assets, setup = build(url)
    config = tmp / "dbmon.yaml"
    config.write_text(yaml.safe_dump({"alerting": {"rules": [FORECAST_RULE]}}))
    rt = Runtime(load_settings(_env_file=None, data_dir=tmp, database_url=url, secret_key="bench", config_file=config),
                 sender=lambda *a: None)
    rt.__dict__["store"] = store
    client = create_app(rt).test_client()
    with store.session() as s:
        headers = {"X-API-Key": create_key(s, name="bench", role="viewer")[1]}
    out: dict = {"setup": setup, "load_average_before": [round(x, 2) for x in os.getloadavg()], "page": {},
                 "series_json": {}}
    for key in RANGES:
        out["page"][key] = timed(client, [f"/assets/{a}?range={key}" for a in assets], headers, runs)
    for key in RANGES:
        paths = []
        for a, kind in zip(assets, ASSET_KINDS, strict=True):
            names = dict.fromkeys(name for name, _, _ in SERIES_BY_KIND[kind])
            paths.append(f"/assets/{a}/series.json?range={key}&" + "&".join(f"metric={n}" for n in names))
        out["series_json"][key] = timed(client, paths, headers, runs, _within_points)
    overview = client.get("/", headers=headers)
    out["overview"] = timed(client, ["/"], headers, runs) if overview.status_code == 200 else \
        {"skipped": f"/ answered {overview.status_code}"}
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    rt.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    results = {"runs": args.runs}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{tmp}/bench.sqlite3", args.runs, Path(tmp))
    if not args.sqlite_only:
        name, url = create_pg_database("dbmon_bench_pages")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                results["postgresql"] = measure(url.replace("postgresql://", "postgresql+psycopg2://", 1), args.runs,
                                                Path(tmp))
        finally:
            drop_pg_database(name)
    print(write("pages_render", results))
    for backend in ("sqlite", "postgresql"):
        if backend in results:
            r = results[backend]
            print(backend, r["setup"], {k: (v["median"], v["p99"]) for k, v in r["page"].items()},
                  {k: (v["median"], v["p99"]) for k, v in r["series_json"].items()}, r["overview"])


if __name__ == "__main__":
    main()
