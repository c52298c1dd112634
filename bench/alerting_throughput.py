"""Alerts evaluated per second by the engine itself (no broker): event rules over stored
events, and threshold rules over stored metric series, on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.alerting_common import create_pg_database, drop_pg_database, upgrade, write


def engine_on(url: str, cfg: dict):
    from monitor_app.alerting.config import load_alerting_config
    from monitor_app.alerting.operations import AlertOperations
    from monitor_app.store import Store

    return AlertOperations(Store(url), load_alerting_config(cfg), "bench")


def seed_assets(store, n: int, prefix: str) -> list[int]:
    from monitor_app.store.models.core import Asset

    with store.session() as s:
        rows = [Asset(kind="database", name=f"{prefix}{i}", source="config", external_id=f"{prefix}{i}",
                      labels={"env": "prod" if i % 2 else "dev"}, connection={}, details={}) for i in range(n)]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def events_per_second(url: str, assets: int, events: int) -> float:
    from monitor_app.store.base import utcnow
    from monitor_app.store.models.core import Event

    cfg = {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "resolve_on": ["asset.up"]},
                     {"name": "Schema", "kind": "event", "event_types": ["schema.*"], "min_risk": "high",
                      "label_from_payload": ["object"]},
                     {"name": "Restart", "kind": "event", "event_types": ["container.restart"]}]}
    engine = engine_on(url, cfg)
    ids = seed_assets(engine.store, assets, "ev")
    now = utcnow()
    with engine.store.session() as s:
        rows = [Event(type=("asset.down", "asset.up", "schema.changed", "container.restart")[i % 4],
                      asset_id=ids[i % len(ids)], severity="warning", summary="", observed_at=now, detected_at=now,
                      payload={"object": f"t{i % 50}", "risk": "critical"}) for i in range(events)]
        s.add_all(rows)
        s.flush()
        event_ids = [r.id for r in rows]
    started = time.perf_counter()
    for i in range(0, len(event_ids), 100):
        engine.evaluate_events(event_ids[i:i + 100])
    elapsed = time.perf_counter() - started
    engine.store.dispose()
    return events / elapsed


def series_per_second(url: str, assets: int, rounds: int) -> float:
    from monitor_app.store.base import utcnow
    from monitor_app.store.models.metrics import MetricSample

    cfg = {"rules": [{"name": "HighCpu", "kind": "threshold", "metric": "cpu", "value": 50, "for": "30s"},
                     {"name": "ProdDisk", "kind": "threshold", "metric": "disk", "value": 90, "match": ["env=prod"]}]}
    now = {"t": utcnow()}
    engine = engine_on(url, cfg)
    engine.clock = lambda: now["t"]
    ids = seed_assets(engine.store, assets, "ts")
    evaluated, elapsed = 0, 0.0
    for r in range(rounds):
        now["t"] += timedelta(seconds=15)
        with engine.store.session() as s:
            s.add_all(MetricSample(name=name, asset_id=a, value=(i * 7 + r * 13) % 100, labels={}, at=now["t"])
                      for i, a in enumerate(ids) for name in ("cpu", "disk"))
        started = time.perf_counter()
        outcome = engine.evaluate_metrics()
        elapsed += time.perf_counter() - started
        evaluated += outcome.signals
    engine.store.dispose()
    return evaluated / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    result = {"assets": args.assets, "events": args.events}
    for backend in ("sqlite", "postgresql"):
        ev, se = [], []
        for _ in range(args.runs):
            if backend == "sqlite":
                url, cleanup = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite3'}", lambda: None
            else:
                name, pg = create_pg_database("dbmon_bench")
                url, cleanup = pg.replace("postgresql://", "postgresql+psycopg2://", 1), (lambda n=name: drop_pg_database(n))
            upgrade(url)
            ev.append(events_per_second(url, args.assets, args.events))
            se.append(series_per_second(url, args.assets, 5))
            cleanup()
        result[backend] = {"events_evaluated_per_s": round(statistics.median(ev)),
                           "metric_series_evaluated_per_s": round(statistics.median(se))}
        print(backend, result[backend])
    print(write("alerting_throughput", result))


if __name__ == "__main__":
    main()
