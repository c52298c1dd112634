"""Reconcile of N containers (list + inspect + identify + store) on SQLite and PostgreSQL.

N running busybox containers of mixed kinds (databases, web servers, admin tools, clients).
Timed: the first reconcile (everything new) and a steady-state one (nothing changed),
several runs each, medians reported. Target: < 3 s for 200 containers.

    python -m bench.containers_reconcile [--containers 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402

from monitor_app.containers.config import ContainersConfig  # noqa: E402
from monitor_app.containers.discovery import reconcile  # noqa: E402
from monitor_app.store import Store  # noqa: E402
from monitor_app.store.migrate import upgrade  # noqa: E402
from tests.containers.conftest import IMAGES, cleanup, make_image  # noqa: E402

BENCH_LABEL = "containers-bench"  # its own label: a test session cleaning up leaves these alone
from tests.services import create_pg_database, drop_pg_database  # noqa: E402

from bench.stats import write  # noqa: E402
KINDS = [("dbmct-bench/postgres:16", {"POSTGRES_PASSWORD": "x"}), ("dbmct-bench/mysql:8", {"MYSQL_ROOT_PASSWORD": "x"}),
         ("dbmct-bench/redis:7", {}), ("dbmct-bench/mongo:7", {}), ("dbmct-bench/nginx:1.25", {}),
         ("dbmct-bench/adminer:4", {}), ("dbmct-bench/base:1", {"DATABASE_URL": "postgres://db/app"})]


def start_containers(client, n: int) -> int:
    def one(i: int) -> None:
        image, env = KINDS[i % len(KINDS)]
        c = client.api.create_container(image, name=f"dbmt-recon-{i}", environment=env, labels={"dbmon-test": BENCH_LABEL},
                                        host_config=client.api.create_host_config(network_mode="none"))
        client.api.start(c["Id"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(n)))
    return len(client.api.containers(all=True))


def timed_reconcile(store: Store, client, config) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with store.session() as s:
        out = reconcile(s, client, config)
    return time.perf_counter() - t0, out.as_dict()


def bench_backend(label: str, url: str, client, runs: int) -> dict:
    config = ContainersConfig()
    first, steady = [], []
    for _ in range(runs):
        upgrade(url)
        store = Store(url)
        try:
            t, out = timed_reconcile(store, client, config)
            first.append(t)
            t2, out2 = timed_reconcile(store, client, config)
            steady.append(t2)
            assert not out2["created"] and not out2["changed"], out2
        finally:
            store.dispose()
        if url.startswith("sqlite"):
            Path(url.removeprefix("sqlite:///")).unlink()  # the next run starts from an empty store
    print(f"{label}: first {statistics.median(first):.3f} s, steady {statistics.median(steady):.3f} s "
          f"({out['seen']} containers, {out['databases']} databases)", flush=True)
    return {"first_s": round(statistics.median(first), 4), "steady_s": round(statistics.median(steady), 4),
            "first_runs_s": [round(x, 4) for x in first], "steady_runs_s": [round(x, 4) for x in steady],
            "containers": out["seen"], "databases": out["databases"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv if argv is not None else [])
    client = docker.from_env(timeout=120)
    for tag, spec in IMAGES.items():
        make_image(client, tag.replace("dbmct/", "dbmct-bench/"), label_value=BENCH_LABEL, **spec)
    results = {}
    try:
        total = start_containers(client, args.containers)
        print(f"{total} containers on the engine", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            results["sqlite"] = bench_backend("sqlite", f"sqlite:///{tmp}/bench.sqlite3", client, args.runs)
        pg_runs = []
        for _ in range(args.runs):
            name, url = create_pg_database("dbmon_bench")
            try:
                pg_runs.append(bench_backend("postgresql", url.replace("postgresql://", "postgresql+psycopg2://", 1),
                                             client, 1))
            finally:
                drop_pg_database(name)
        results["postgresql"] = {
            "first_s": statistics.median(r["first_s"] for r in pg_runs),
            "steady_s": statistics.median(r["steady_s"] for r in pg_runs),
            "first_runs_s": [r["first_s"] for r in pg_runs], "steady_runs_s": [r["steady_s"] for r in pg_runs],
            "containers": pg_runs[0]["containers"], "databases": pg_runs[0]["databases"]}
    finally:
        cleanup(client, BENCH_LABEL)
    worst = max(results[b]["first_s"] for b in results)
    path = write("containers_reconcile", {
        "what": f"reconcile of {args.containers} running containers (list + inspect + identify + store)",
        "runs": args.runs, "backends": results, "worst_first_s": worst, "target_s": 3.0, "meets_target": worst < 3.0})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
