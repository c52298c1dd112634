"""A sweep fanning out over 1,000 assets: the due query, the ledger rows, the broker publishes.

Distributed mode for real: a throwaway PostgreSQL store (synchronous commit on, as deployed)
and a private redis-server. N database assets; each run times `schema.check_due`'s body (the
due list, then one `schema.check` per asset recorded in the ledger and published to Redis),
and the ledger and broker parts alone. No worker consumes: this is the dispatching side.

    python -m bench.sweep_fanout [--assets 1000] [--runs 5] [--out sweep_fanout]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import write  # noqa: E402
from tests.harness import RedisServer  # noqa: E402
from tests.services import create_pg_database, drop_pg_database, pg_admin_connect  # noqa: E402


def _runtime(tmp: Path, url: str, broker: str):
    """A Runtime as a worker builds it: settings from the environment, the real Celery app."""
    config = tmp / "dbmon.yaml"
    config.write_text("schema:\n  check_interval: 60\n")
    os.environ.update({"DBMON_DATA_DIR": str(tmp), "DBMON_DATABASE_URL": url, "DBMON_BROKER_URL": broker,
                       "DBMON_CONFIG_FILE": str(config), "DBMON_SECRET_KEY": "bench-secret"})
    from monitor_app.config.settings import load_settings
    from monitor_app.platform.runtime import Runtime

    return Runtime(load_settings())


def _add_assets(rt, n: int) -> list[int]:
    from monitor_app.store.models import Asset

    with rt.store.session() as s:
        assets = [Asset(kind="database", engine="postgresql", name=f"fan-{i}", source="config",
                        external_id=f"fan-{i}", labels={}, details={}, status="up",
                        connection={"host": "127.0.0.1", "port": 5432, "database": f"db{i}", "user": "postgres"})
                  for i in range(n)]
        s.add_all(assets)
        s.flush()
        return [a.id for a in assets]


def _clear(rt) -> None:
    from sqlalchemy import delete

    from monitor_app.store.models import TaskRun

    with rt.store.session() as s:
        s.execute(delete(TaskRun))


def one_run(rt, redis_client) -> dict:
    from monitor_app.schema.check import due_assets
    from workers.task_base import fan_out

    _clear(rt)
    redis_client.flushdb()
    t0 = time.perf_counter()
    due = due_assets(rt)
    t1 = time.perf_counter()
    out = fan_out(rt, "schema.check", due)
    t2 = time.perf_counter()
    queued = redis_client.llen("schema")
    assert queued == len(due) == out["dispatched"], (queued, len(due))
    return {"due_query_s": t1 - t0, "fan_out_s": t2 - t1, "sweep_s": t2 - t0, "dispatched": len(due)}


def parts(rt, ids: list[int]) -> dict:
    """The ledger alone, one row per transaction (as before) and batched; the broker alone."""
    kwargs = [{"asset_id": i} for i in ids]
    _clear(rt)
    t0 = time.perf_counter()
    for kw in kwargs:
        rt.ledger.record("schema.check", kw, queue="schema")
    t1 = time.perf_counter()
    rt.ledger.record_many("schema.check", kwargs, queue="schema")
    t2 = time.perf_counter()
    for n, kw in enumerate(kwargs):
        rt.sender("schema.check", kw, f"each-{n}-{t2}", "schema")
    t3 = time.perf_counter()
    return {"ledger_each_s": t1 - t0, "ledger_batch_s": t2 - t1, "publish_s": t3 - t2}


def main(argv: list[str] | None = None) -> None:
    import redis

    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="sweep_fanout")
    args = ap.parse_args(argv if argv is not None else [])
    from monitor_app.store.migrate import upgrade

    name, url = create_pg_database("dbmon_bench_fanout")
    conn = pg_admin_connect()
    with conn.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')  # as a deployed store runs
    conn.close()
    url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        rt = None
        try:
            upgrade(url)
            rt = _runtime(Path(tmp), url, server.url)
            ids = _add_assets(rt, args.assets)
            client = redis.Redis.from_url(server.url)
            one_run(rt, client)  # warm-up: connections, imports
            runs = [one_run(rt, client) for _ in range(args.runs)]
            split = [parts(rt, ids) for _ in range(args.runs)]
        finally:
            if rt is not None:
                rt.close()
            server.stop()
            drop_pg_database(name)
    med = {k: round(statistics.median(r[k] for r in runs), 4) for k in ("due_query_s", "fan_out_s", "sweep_s")}
    med.update({k: round(statistics.median(r[k] for r in split), 4)
                for k in ("ledger_each_s", "ledger_batch_s", "publish_s")})
    med["tasks_per_s"] = round(args.assets / med["fan_out_s"], 1)
    print(med, flush=True)
    path = write(args.out, {
        "what": f"schema sweep over {args.assets} PostgreSQL assets: due query + one ledger row and one Redis "
                "publish per asset (PostgreSQL store, synchronous_commit on; private redis-server)",
        "assets": args.assets, "runs": args.runs, "median": med,
        "runs_s": [{k: round(v, 4) for k, v in r.items()} for r in runs]})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
