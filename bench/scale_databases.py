"""Many databases on one server: connections dbmon holds against its budget, idle CPU, detection.

For each size (default 100 and 1,000; `python -m bench.scale_databases 1000 1000` runs 1,000 twice): a
private cluster with the default `max_connections` (100), that many databases copied from a
template carrying the event trigger (on tmpfs when it has room), and `dbmon up` (embedded) monitoring all of them with
event triggers on and the default budget (3: two listeners, one slot for checks and the
fallback pre-check). Throughout, every connection dbmon holds on the cluster is sampled from
`pg_stat_activity` (every 50 ms). Once every database has its baseline: the CPU time of
dbmon's processes over an idle minute, per monitored database; then DDL -> change set stored,
for databases inside the LISTEN set and outside it (covered by the pre-check), SAMPLES each.
Finally SIGTERM to `dbmon up` with every listener and pre-check running: time to exit.

`--no-file-watches` runs with `files.auto_watch` off (no watch derived for the local server's data
directory, WAL and config files), to tell their share apart.

Each run is one row of the results; rows of earlier runs are kept (a run of 1,000 does not
drop the rows of 100), and `medians` gives each size's median over its rows.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from sqlalchemy import func, select

from bench.stats import RESULTS, summary, write
from monitor_app.schema import event_trigger
from monitor_app.store.models import Asset
from monitor_app.store.models.schema import SchemaChangeSet, SchemaWatchState
from tests.harness import Deployment, wait_for
from tests.posture.clusters import PrivateCluster
from tests.services import free_port

SAMPLES = 7
IDLE_SECONDS = 60
BUDGET = 3


class Sampler:
    def __init__(self, cluster: PrivateCluster):
        self.conn = cluster.connect()
        self.most = 0
        self.listened: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with self.conn.cursor() as cur:
                cur.execute("SELECT application_name, datname FROM pg_stat_activity WHERE application_name LIKE 'dbmon%%'")
                rows = cur.fetchall()
            self.most = max(self.most, len(rows))
            self.listened = sorted(d for app, d in rows if app == "dbmon-listener")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


def make_cluster(cluster: PrivateCluster, size: int) -> float:
    # Only creating the databases is sped up (no fsync); limits stay the defaults.
    cluster.start(listen="", fsync="off", full_page_writes="off")
    started = time.monotonic()
    cluster.run("CREATE DATABASE scale_template")
    event_trigger.install(cluster.dsn(database="scale_template"))
    for i in range(size):
        cluster.run(f"CREATE DATABASE scale_{i:04d} TEMPLATE scale_template STRATEGY FILE_COPY")
    return time.monotonic() - started


def config(cluster: PrivateCluster, size: int, file_watches: bool = True) -> str:
    assets = "".join(f"  - name: db{i:04d}\n    engine: postgresql\n    host: {cluster.root}\n    port: {cluster.port}\n"
                     f"    database: scale_{i:04d}\n    user: postgres\n    sslmode: disable\n    insecure: true\n"
                     for i in range(size))
    files = "" if file_watches else "files:\n  auto_watch: false\n"
    return f"assets:\n{assets}schema:\n  event_triggers: true\n  check_interval: 86400\n{files}"


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def tree_pss_mib(pid: int) -> float:
    total = 0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_full_info().pss
        except psutil.Error:
            pass
    return total / 2**20


def latest_set(d: Deployment, asset_id: int) -> int:
    with d.runtime.store.session() as s:
        return s.scalar(select(func.max(SchemaChangeSet.id)).where(SchemaChangeSet.asset_id == asset_id)) or 0


def detection(d: Deployment, cluster: PrivateCluster, ids: dict[str, int], database: str, n: int) -> tuple[float, str]:
    before = latest_set(d, ids[database])
    started = time.monotonic()
    cluster.run(f"CREATE TABLE bench_{n} (id integer)", database=database)
    wait_for(lambda: latest_set(d, ids[database]) > before, 120, interval=0.02, what=f"change in {database} stored")
    took = time.monotonic() - started
    with d.runtime.store.session() as s:
        context = s.scalar(select(SchemaChangeSet.context).where(SchemaChangeSet.asset_id == ids[database])
                           .order_by(SchemaChangeSet.id.desc()).limit(1))
    return took, context.get("source", "?")


def private_cluster(size: int) -> PrivateCluster:
    """On tmpfs when it has room (about 8 MB a database): removing a thousand databases from a
    disk that discards freed blocks takes minutes, which only the benchmark would wait for."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > size * 16 * 2**20:
        previous, tempfile.tempdir = tempfile.tempdir, str(shm)
        try:
            return PrivateCluster()
        finally:
            tempfile.tempdir = previous
    return PrivateCluster()


def one_size(size: int, file_watches: bool = True) -> dict:
    cluster = private_cluster(size)
    sampler = None
    tmp = Path(tempfile.mkdtemp(prefix=f"dbmon-scale-{size}-"))
    # The shipped defaults, not the test harness's short leases (whose redelivery churn a backlog of
    # hundreds of checks would turn into the thing measured).
    d = Deployment("embedded", tmp, {"DBMON_API_PORT": str(free_port()), "DBMON_REACHABILITY_INTERVAL": "30",
                                     "DBMON_WORKER_CONCURRENCY": "2", "DBMON_TASK_LEASE_SECONDS": "30",
                                     "DBMON_TASK_QUEUED_GRACE": "60", "DBMON_REDELIVER_INTERVAL": "15",
                                     "DBMON_PROBE_TIMEOUT": "5"})
    try:
        created_s = make_cluster(cluster, size)
        sampler = Sampler(cluster)
        d.migrate()
        d.write_config(config(cluster, size, file_watches))
        up = d.start("up", "up")
        started = time.monotonic()

        def baselined() -> bool:
            with d.runtime.store.session() as s:
                return s.scalar(select(func.count()).select_from(SchemaWatchState)
                                .where(SchemaWatchState.marker.is_not(None))) >= size
        wait_for(baselined, 3600, interval=1.0, what="every database baselined")
        baseline_s = time.monotonic() - started
        wait_for(lambda: len(sampler.listened) == BUDGET - 1, 120, what="listeners")
        with d.runtime.store.session() as s:
            ids = {a.connection["database"]: a.id for a in s.scalars(select(Asset)) if (a.connection or {}).get("database")}

        time.sleep(5)
        cpu_before, wall_before = tree_cpu_seconds(up.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        cpu = tree_cpu_seconds(up.pid) - cpu_before
        idle_cpu_pct = 100 * cpu / (time.monotonic() - wall_before)
        idle_pss = tree_pss_mib(up.pid)

        inside, outside, sources = [], [], {"inside": [], "outside": []}
        rng = random.Random(size)
        for n in range(SAMPLES):
            listened = list(sampler.listened)
            took, source = detection(d, cluster, ids, rng.choice(listened), 2 * n)
            inside.append(took)
            sources["inside"].append(source)
            others = [db for db in ids if db not in sampler.listened]
            took, source = detection(d, cluster, ids, rng.choice(others), 2 * n + 1)
            outside.append(took)
            sources["outside"].append(source)

        stopping = time.monotonic()
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=60)
        shutdown_s = time.monotonic() - stopping
        d.procs.pop("up", None)
        too_many = (cluster.root / "log").read_text(errors="replace").count("too many clients")
        return {"databases": size, "create_databases_s": round(created_s, 1), "baseline_all_s": round(baseline_s, 1),
                "budget": BUDGET, "max_connections_held": sampler.most, "too_many_clients": too_many,
                "idle_cpu_pct_total": round(idle_cpu_pct, 2),
                "idle_cpu_pct_per_database": round(idle_cpu_pct / size, 4), "idle_pss_mib": round(idle_pss, 1),
                "ddl_to_stored_inside_listen_s": summary(inside), "ddl_to_stored_outside_listen_s": summary(outside),
                "detected_by": sources, "shutdown_s": round(shutdown_s, 2), "exit_code": code}
    finally:
        if sampler is not None:
            sampler.close()
        d.close()
        cluster.stop()


MEDIAN_FIELDS = ("create_databases_s", "baseline_all_s", "max_connections_held", "too_many_clients",
                 "idle_cpu_pct_total", "idle_cpu_pct_per_database", "idle_pss_mib", "shutdown_s")


def medians(rows: list[dict]) -> list[dict]:
    out = []
    for size in sorted({r["databases"] for r in rows}):
        runs = [r for r in rows if r["databases"] == size]
        row = {"databases": size, "runs": len(runs)}
        row.update({f: statistics.median(r[f] for r in runs) for f in MEDIAN_FIELDS if all(f in r for r in runs)})
        for side in ("inside", "outside"):
            key = f"ddl_to_stored_{side}_listen_s"
            row[key] = {"median": statistics.median(r[key]["median"] for r in runs),
                        "p99": statistics.median(r[key]["p99"] for r in runs)}
        out.append(row)
    return out


def earlier_rows() -> list[dict]:
    try:
        return json.loads((RESULTS / "scale_databases.json").read_text()).get("sizes", [])
    except (OSError, ValueError):
        return []


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--no-file-watches"]
    file_watches = "--no-file-watches" not in sys.argv[1:]
    sizes = [int(a) for a in args] or [100, 1000]
    results = earlier_rows()
    for size in sizes:
        r = one_size(size, file_watches)
        r["file_watches"] = file_watches
        results.append(r)
        # Written after each run: a larger size that does not finish keeps the other rows' figures.
        path = write("scale_databases", {"samples": SAMPLES, "idle_seconds": IDLE_SECONDS,
                                         "medians": medians(results), "sizes": results})
        print(f"{size} databases: held at most {r['max_connections_held']} (budget {r['budget']}), "
              f"too many clients {r['too_many_clients']}, idle CPU {r['idle_cpu_pct_total']} % "
              f"({r['idle_cpu_pct_per_database']} % per database), DDL->stored inside LISTEN median "
              f"{r['ddl_to_stored_inside_listen_s']['median']:.2f} s p99 {r['ddl_to_stored_inside_listen_s']['p99']:.2f} s, "
              f"outside median {r['ddl_to_stored_outside_listen_s']['median']:.2f} s "
              f"p99 {r['ddl_to_stored_outside_listen_s']['p99']:.2f} s, SIGTERM -> exit {r['shutdown_s']} s; "
              f"written to {path}", flush=True)


if __name__ == "__main__":
    main()
