"""Throughput with 1, 2 and 4 worker processes: does it grow with the workers?

Distributed mode for real: a PostgreSQL store, a private redis-server, and `dbmon worker`
processes (one pool process each, `-c 1`), started and stopped per worker count. Two bursts,
each dispatched at once through the ledger and timed until every run is done:

- schema checks: one `schema.check` per asset over N PostgreSQL databases (each a real
  database with a few tables; every check connects, snapshots and diffs against its baseline);
- container starts: one `containers.handle_event` per running container (real busybox
  containers on the Docker engine; each task inspects its container, identifies it and stores
  its asset), as the watcher sends for `docker start`. Skipped without a Docker engine.

Tasks per second is runs / wall time; medians over runs. The scaling ratio is the throughput
with w workers over the throughput with one.

    python -m bench.scale_workers [--databases 40] [--containers 40] [--runs 3] [--workers 1,2,4]
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
from tests.harness import Deployment, wait_for  # noqa: E402
from tests.services import create_pg_database, docker_available, drop_pg_database  # noqa: E402

BENCH_LABEL = "scale-bench"
TABLES = 12


def _make_databases(n: int) -> list[tuple[str, str]]:
    import psycopg2

    made = []
    for _ in range(n):
        name, url = create_pg_database("dbmon_bench_scale")
        made.append((name, url))
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            for t in range(TABLES):
                cur.execute(f"CREATE TABLE t{t} (id bigint PRIMARY KEY, name text NOT NULL, at timestamptz, "
                            f"n{t} integer DEFAULT 0)")
                cur.execute(f"CREATE INDEX t{t}_name ON t{t} (name)")
        conn.close()
    return made


def _add_assets(d: Deployment, databases: list[tuple[str, str]]) -> list[int]:
    from monitor_app.store.models import Asset
    from tests.schema.conftest import pg_connection

    with d.runtime.store.session() as s:
        assets = [Asset(kind="database", engine="postgresql", name=name, source="config", external_id=name,
                        labels={}, details={}, status="up", connection=pg_connection(url)) for name, url in databases]
        s.add_all(assets)
        s.flush()
        return [a.id for a in assets]


def _burst(d: Deployment, task: str, kwargs_list: list[dict], timeout: float = 600) -> tuple[float, int]:
    from sqlalchemy import func, select

    from monitor_app.store.models import TaskRun

    started = time.perf_counter()
    run_ids = d.runtime.dispatch_many(task, kwargs_list, requested_by="bench")

    def finished() -> int:
        with d.runtime.store.session() as s:
            return s.scalar(select(func.count()).select_from(TaskRun).where(
                TaskRun.id.in_(run_ids), TaskRun.status.in_(("done", "failed"))))

    wait_for(lambda: finished() == len(run_ids), timeout, interval=0.05, what=f"{len(run_ids)} {task} runs")
    elapsed = time.perf_counter() - started
    with d.runtime.store.session() as s:
        failed = s.scalar(select(func.count()).select_from(TaskRun).where(
            TaskRun.id.in_(run_ids), TaskRun.status == "failed"))
    return elapsed, failed


def _containers(n: int) -> tuple[object, list[dict]]:
    import docker

    from tests.containers.conftest import TEST_LABEL, make_image

    client = docker.from_env(timeout=120)
    make_image(client, "dbmct-bench/postgres:16", label_value=BENCH_LABEL, expose=[5432])
    events = []
    for i in range(n):
        c = client.api.create_container("dbmct-bench/postgres:16", name=f"dbmon-scale-{i}",
                                        environment={"POSTGRES_PASSWORD": "x"}, labels={TEST_LABEL: BENCH_LABEL},
                                        host_config=client.api.create_host_config(network_mode="none"))
        client.api.start(c["Id"])
        events.append({"container_id": c["Id"], "action": "start", "time_nano": time.time_ns(),
                       "attributes": {"name": f"dbmon-scale-{i}"}})
    return client, events


def _clear_container_assets(d: Deployment) -> None:
    """Each burst registers the containers as new, as the first start of each would."""
    from sqlalchemy import delete

    from monitor_app.store.models import Asset

    with d.runtime.store.session() as s:
        s.execute(delete(Asset).where(Asset.source == "docker"))


def measure(d: Deployment, workers: int, runs: int, asset_ids: list[int], events: list[dict]) -> dict:
    names = [f"bench-w{workers}-{i}" for i in range(workers)]
    for name in names:
        d.start(name, "worker", "-c", "1", "-n", f"{name}-{os.getpid()}@bench")
    for name in names:
        try:
            wait_for(lambda name=name: "ready." in d.log(name), 90, what=f"{name} ready")
        except AssertionError:
            print(d.log(name)[-3000:], file=sys.stderr)
            raise
    out: dict = {"workers": workers}
    try:
        # Untimed: every pool process imports, connects and warms up before the timed bursts.
        _burst(d, "schema.check", [{"asset_id": a, "context": {"source": "notify"}} for a in asset_ids])
        schema = [_burst(d, "schema.check", [{"asset_id": a, "context": {"source": "notify"}} for a in asset_ids])
                  for _ in range(runs)]
        out["schema_tasks_per_s"] = round(statistics.median(len(asset_ids) / t for t, _ in schema), 2)
        out["schema_runs_s"] = [round(t, 3) for t, _ in schema]
        out["schema_failed"] = sum(f for _, f in schema)
        if events:
            container_runs = []
            for _ in range(runs):
                _clear_container_assets(d)
                container_runs.append(_burst(d, "containers.handle_event", events))
            out["container_tasks_per_s"] = round(statistics.median(len(events) / t for t, _ in container_runs), 2)
            out["container_runs_s"] = [round(t, 3) for t, _ in container_runs]
            out["container_failed"] = sum(f for _, f in container_runs)
    finally:
        for name in names:
            d.kill(name, 15)
    print(out, flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--databases", type=int, default=40)
    ap.add_argument("--containers", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args(argv if argv is not None else [])
    counts = [int(w) for w in args.workers.split(",")]
    databases: list[tuple[str, str]] = []
    client = None
    with tempfile.TemporaryDirectory() as tmp:
        d = Deployment("distributed", Path(tmp), {"DBMON_TASK_LEASE_SECONDS": "30",
                                                   "DBMON_TASK_QUEUED_GRACE": "120"})
        try:
            d.migrate()
            containers_on = args.containers > 0 and docker_available()
            d.write_config("schema:\n  event_triggers: false\n"
                           f"containers:\n  enabled: {'true' if containers_on else 'false'}\n")
            databases = _make_databases(args.databases)
            asset_ids = _add_assets(d, databases)
            events: list[dict] = []
            if containers_on:
                client, events = _containers(args.containers)
            # Baselines first: the timed bursts compare against a stored schema, as a running deployment does.
            measure(d, max(counts), 1, asset_ids, [])
            results = [measure(d, w, args.runs, asset_ids, events) for w in counts]
        finally:
            d.close()
            for name, _ in databases:
                drop_pg_database(name)
            if client is not None:
                from tests.containers.conftest import cleanup

                cleanup(client, BENCH_LABEL)
    base = results[0]
    for r in results:
        r["schema_scaling"] = round(r["schema_tasks_per_s"] / base["schema_tasks_per_s"], 2)
        if "container_tasks_per_s" in r:
            r["container_scaling"] = round(r["container_tasks_per_s"] / base["container_tasks_per_s"], 2)
    path = write("scale_workers", {
        "what": "bursts through the ledger and Redis to N `dbmon worker -c 1` processes, timed until every run "
                "is done: schema checks of PostgreSQL databases, container start events of busybox containers",
        "databases": args.databases, "tables_per_database": TABLES, "containers": len(events), "runs": args.runs,
        "results": results})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
