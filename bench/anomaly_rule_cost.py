"""What the anomaly rules cost the alert evaluation: warm starts, a minute to feed, and nothing to feed.

    python -m bench.anomaly_rule_cost [--assets 20] [--series 10] [--hours 24]

`--assets` x `--series` series with `--hours` of one-minute history are written into a fresh
store (SQLite, then a throwaway database on the local PostgreSQL); one anomaly
rule watches them all. Reported: the evaluations the warm starts took (20 series each), then the
median time of `alerts.evaluate_metrics` when every detector has a new minute to feed and when
none has (the evaluations in between, every 15 s), over `--rounds` minutes. Writes
bench/results/anomaly_rule_cost.json.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from bench.stats import write  # noqa: E402
from monitor_app.alerting.config import load_alerting_config  # noqa: E402
from monitor_app.alerting.operations import AlertOperations  # noqa: E402
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter  # noqa: E402
from monitor_app.store.base import Store  # noqa: E402
from monitor_app.store.migrate import upgrade  # noqa: E402
from monitor_app.store.models import Asset  # noqa: E402
from monitor_app.store.models.analysis import SeriesDetectorState  # noqa: E402

START = datetime(2026, 11, 2, tzinfo=timezone.utc)


def fill(store: Store, assets: int, series: int, hours: int) -> list[tuple[int, str]]:
    rng = random.Random(1)
    ids = []
    with store.session() as s:
        for a in range(assets):
            asset = Asset(kind="database", engine="postgresql", name=f"db-{a}", source="config",
                          external_id=f"db-{a}", labels={}, details={}, connection={}, status="up")
            s.add(asset)
            s.flush()
            ids.append(asset.id)
    names = [f"bench.series_{i}" for i in range(series)]
    writer = SeriesWriter(store)
    for asset_id in ids:
        writer.write([SeriesSample(asset_id, name, 100 + rng.gauss(0, 5), START + timedelta(minutes=m))
                      for name in names for m in range(hours * 60)])
    return [(a, n) for a in ids for n in names]


def measure(url: str, assets: int, series: int, hours: int, rounds: int) -> dict:
    upgrade(url)
    store = Store(url)
    pairs = fill(store, assets, series, hours)
    rule = {"name": "Bench", "kind": "anomaly", "series": [f"bench.series_{i}" for i in range(series)],
            "min_effect": 1}
    config = load_alerting_config({"rules": [rule], "default_rules": {"enabled": False}})
    now = START + timedelta(hours=hours, seconds=30)
    engine = AlertOperations(store, config, "bench", clock=lambda: now)
    warm, began = 0, time.perf_counter()
    while True:
        engine.evaluate_metrics()
        warm += 1
        with store.session() as s:
            if s.scalar(select(func.count()).select_from(SeriesDetectorState)) >= len(pairs) or warm > 1000:
                break
    warm_seconds = time.perf_counter() - began
    rng, due, idle = random.Random(2), [], []
    writer = SeriesWriter(store)
    for r in range(rounds):
        at = START + timedelta(hours=hours, minutes=r)
        writer.write([SeriesSample(a, n, 100 + rng.gauss(0, 5), at) for a, n in pairs])
        now = at + timedelta(minutes=1, seconds=21)  # the minute has settled: every detector is due
        t = time.perf_counter()
        engine.evaluate_metrics()
        due.append(time.perf_counter() - t)
        now = at + timedelta(minutes=1, seconds=36)  # 15 s later: nothing new
        t = time.perf_counter()
        engine.evaluate_metrics()
        idle.append(time.perf_counter() - t)
    store.dispose()
    n = len(pairs)
    return {"series": n, "history_hours": hours, "warm_start_evaluations": warm, "warm_start_seconds": round(warm_seconds, 2),
            "due_median_s": round(statistics.median(due), 4), "due_ms_per_series": round(statistics.median(due) / n * 1000, 3),
            "idle_median_s": round(statistics.median(idle), 4), "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{tmp}/bench.db", args.assets, args.series, args.hours, args.rounds)
    from tests.services import create_pg_database, drop_pg_database

    name, url = create_pg_database("dbmon_bench_rules")
    try:
        results["postgresql"] = measure(url.replace("postgresql://", "postgresql+psycopg2://", 1), args.assets, args.series, args.hours, args.rounds)
    finally:
        drop_pg_database(name)
    path = write("anomaly_rule_cost", {"assets": args.assets, "series_per_asset": args.series, **results})
    for mode, r in results.items():
        print(f"{mode}: {r['series']} series, warm starts {r['warm_start_evaluations']} evaluations in "
              f"{r['warm_start_seconds']} s; a minute due {r['due_median_s']} s ({r['due_ms_per_series']} ms/series); "
              f"nothing due {r['idle_median_s']} s")
    print(path)


if __name__ == "__main__":
    main()
