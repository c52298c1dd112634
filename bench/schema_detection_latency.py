"""DDL commit -> change stored: median and p99 over N DDL statements, two ways.

- trigger: the event trigger notifies, the listener coalesces (quiet 50 ms), the check
  snapshots, diffs and stores the change set (run in the listener's callback, as a
  schema worker would run the task; broker transit is not included).
- trigger_through_deployment: the same, but through real watcher and worker processes,
  the task ledger and the broker, in both deployment modes.
- scheduled: no trigger; a scheduled check every --interval seconds reads the pre-check
  marker and snapshots only when it moved. Latency ~ interval / 2 + check time, so the
  figure scales with the configured interval (default 300 s).

    python bench/schema_detection_latency.py [--ddl 100] [--interval 1.0]

Writes bench/results/schema_detection_latency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor_app.schema.check import run_check  # noqa: E402
from monitor_app.schema.listener import SchemaListener  # noqa: E402
from monitor_app.store import Store  # noqa: E402
from monitor_app.store.migrate import upgrade  # noqa: E402
from tests.schema.conftest import add_asset, make_runtime, pg_connection  # noqa: E402
from tests.services import create_pg_database, drop_pg_database  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(latencies: list[float]) -> dict:
    return {"count": len(latencies), "median_s": round(statistics.median(latencies), 4),
            "p99_s": round(percentile(latencies, 99), 4), "max_s": round(max(latencies), 4)}


def measure(mode: str, ddl_count: int, interval: float, workdir: Path) -> dict:
    name, url = create_pg_database("dbmon_bench")
    store_url = f"sqlite:///{workdir / f'store-{mode}.sqlite3'}"
    upgrade(store_url)
    store = Store(store_url)
    rt = make_runtime(store, workdir, {"schema": {"event_triggers": mode == "trigger"}})
    asset_id = add_asset(store, name=f"bench-{mode}", engine="postgresql", connection=pg_connection(url))
    db = psycopg2.connect(url)  # a user's session: dbmon's connect() pins search_path to pg_catalog
    db.autocommit = True
    stored_version = [1]
    changed = threading.Condition()
    stop = threading.Event()

    def check(context=None):
        outcome = run_check(rt, asset_id, context)
        if outcome.get("changed"):
            with changed:
                stored_version[0] = outcome["version"]
                changed.notify_all()

    run_check(rt, asset_id)  # baseline (installs the trigger in trigger mode)
    if mode == "trigger":
        worker = SchemaListener(url, lambda batch: check(batch.as_context()), quiet=0.05, max_wait=0.5)
        worker.start()
        worker.listening.wait(5)
    else:
        def scheduler():
            while not stop.wait(interval):
                check()
        worker = threading.Thread(target=scheduler, daemon=True)
        worker.start()

    latencies = []
    try:
        for i in range(ddl_count):
            with db.cursor() as cur:
                cur.execute(f"ALTER TABLE IF EXISTS bench_t ADD COLUMN c{i} integer" if i else
                            "CREATE TABLE bench_t (id integer)")
            committed = time.perf_counter()
            want = stored_version[0] + 1
            with changed:
                if not changed.wait_for(lambda want=want: stored_version[0] >= want, timeout=interval * 3 + 10):
                    raise RuntimeError(f"DDL {i} was not stored in time")
            latencies.append(time.perf_counter() - committed)
    finally:
        stop.set()
        if mode == "trigger":
            worker.stop()
        db.close()
        store.dispose()
        drop_pg_database(name)
    return summary(latencies)


def measure_pipeline(mode: str, ddl_count: int, workdir: Path) -> dict:
    """The whole deployment: watcher process -> ledger + broker -> worker process -> store."""
    from sqlalchemy import func, select

    from monitor_app.store.models import Asset
    from monitor_app.store.models.schema import SchemaChangeSet
    from tests.harness import Deployment, wait_for

    name, url = create_pg_database("dbmon_bench")
    polling = {"DBMON_FILESYSTEM_POLLING_INTERVAL": "0.01"} if mode == "embedded" else {}
    d = Deployment(mode, workdir / f"pipeline-{mode}", polling)
    d.tmp.mkdir(parents=True, exist_ok=True)
    latencies = []
    try:
        d.migrate()
        d.write_config(f"assets:\n  - name: bench\n    engine: postgresql\n    host: 127.0.0.1\n"
                       f"    database: {name}\n    user: postgres\n    sslmode: disable\n    insecure: true\n"
                       "schema:\n  event_triggers: true\n")
        d.start_worker()
        d.scan("assets.sync_config")
        with d.runtime.store.session() as s:
            asset_id = s.scalar(select(Asset.id).where(Asset.name == "bench"))
        d.scan("schema.check", {"asset_id": asset_id})
        d.start("watcher", "watcher", "--source", "pg_notify")
        db = psycopg2.connect(url)  # a user's session: dbmon's connect() pins search_path to pg_catalog
        db.autocommit = True

        def stored() -> int:
            with d.runtime.store.session() as s:
                return s.scalar(select(func.count()).select_from(SchemaChangeSet)
                                .where(SchemaChangeSet.asset_id == asset_id))

        def listening() -> bool:
            with db.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbmon-listener' "
                            "AND datname = current_database()")
                return cur.fetchone()[0] > 0

        wait_for(listening, 60, what="watcher listening")
        with db.cursor() as cur:
            cur.execute("CREATE TABLE bench_t (id integer)")
        wait_for(lambda: stored() >= 1, 60, what="first change through the pipeline")
        for i in range(ddl_count):
            before = stored()
            with db.cursor() as cur:
                cur.execute(f"ALTER TABLE bench_t ADD COLUMN c{i} integer")
            committed = time.perf_counter()
            wait_for(lambda before=before: stored() > before, 30, interval=0.005, what=f"DDL {i} stored")
            latencies.append(time.perf_counter() - committed)
        db.close()
    finally:
        d.close()
        drop_pg_database(name)
    return summary(latencies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ddl", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0, help="scheduled-check interval for the fallback")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trigger = measure("trigger", args.ddl, args.interval, Path(tmp))
        scheduled = measure("scheduled", args.ddl, args.interval, Path(tmp))
        pipeline = {mode: measure_pipeline(mode, args.ddl, Path(tmp)) for mode in ("embedded", "distributed")}
    result = {"benchmark": "DDL commit -> change stored", "ddl": args.ddl,
              "trigger": dict(trigger, quiet_s=0.05, target_p99_s=1.0),
              "trigger_through_deployment": dict(
                  pipeline, note="watcher and worker processes; embedded = SQLite store + filesystem broker "
                                 "polled every 10 ms, distributed = PostgreSQL store + Redis"),
              "scheduled": dict(scheduled, interval_s=args.interval,
                                note="each DDL is issued just after the previous check stored, so it waits almost a "
                                     "full interval (the worst case); latency scales with schema.check_interval")}
    out = Path(__file__).resolve().parent / "results" / "schema_detection_latency.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
