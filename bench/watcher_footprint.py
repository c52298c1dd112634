"""The watcher's memory and CPU with many databases on one server: flat in the databases and in events.

For each size (default 100 and 1,000): a private cluster with the default `max_connections`,
that many databases copied from a template carrying the event trigger, an asset and a stored
baseline marker for each written to dbmon's store directly, and `dbmon watcher` on its own with
event triggers on and the default budget (two listeners, the fallback pre-check for the rest).
No worker runs: what the watcher emits stays queued, so only the watcher is measured.

Measured on the watcher process: RSS and PSS and its CPU over an idle minute once the first
pre-check round is done; then BURSTS bursts, each a DDL in BURST_DATABASES databases (both
listened and pre-checked ones) and BURST_STATEMENTS autocommitted DDL statements in a listened
one, with RSS/PSS after each burst. Per-asset growth shows as the difference between sizes;
per-event growth as a rise from burst to burst.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.scale_databases import make_cluster, private_cluster
from bench.stats import RESULTS, write
from monitor_app.schema import precheck
from monitor_app.store.models import Asset
from monitor_app.store.models.schema import SchemaWatchState
from tests.harness import Deployment, wait_for
from tests.posture.clusters import PrivateCluster
from tests.services import free_port

IDLE_SECONDS = 60
BURSTS = 5
BURST_DATABASES = 40
BURST_STATEMENTS = 200
SETTLE_SECONDS = 20


def memory_mib(proc: psutil.Process) -> tuple[float, float]:
    info = proc.memory_full_info()
    return round(info.rss / 2**20, 1), round(info.pss / 2**20, 1)


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def seed_store(d: Deployment, cluster: PrivateCluster, size: int) -> None:
    conn = cluster.connect(database="scale_0000")
    try:
        marker = precheck.postgres_marker(conn)  # every copy of the template has the same catalogue
    finally:
        conn.close()
    with d.runtime.store.session() as s:
        for i in range(size):
            asset = Asset(kind="database", engine="postgresql", name=f"db{i:04d}", source="config",
                          external_id=f"db{i:04d}", labels={}, details={}, status="up",
                          connection={"host": str(cluster.root), "port": cluster.port, "database": f"scale_{i:04d}",
                                      "user": "postgres", "sslmode": "disable", "insecure": True})
            s.add(asset)
            s.flush()
            s.add(SchemaWatchState(asset_id=asset.id, marker=marker))


def listened(cluster: PrivateCluster) -> list[str]:
    conn = cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_stat_activity WHERE application_name = 'dbmon-listener'")
            return sorted(r[0] for r in cur.fetchall())
    finally:
        conn.close()


def burst(cluster: PrivateCluster, size: int, n: int, rng: random.Random) -> None:
    targets = listened(cluster) + [f"scale_{rng.randrange(size):04d}" for _ in range(BURST_DATABASES - 2)]
    for j, database in enumerate(targets):
        cluster.run(f"CREATE TABLE burst_{n}_{j} (id integer)", database=database)
    busy = listened(cluster)[0]
    conn = cluster.connect(database=busy)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS many_{n} (id integer)")
            for k in range(BURST_STATEMENTS):
                cur.execute(f"ALTER TABLE many_{n} ADD COLUMN c{k} integer")
    finally:
        conn.close()


def one_size(size: int) -> dict:
    cluster = private_cluster(size)
    tmp = Path(tempfile.mkdtemp(prefix=f"dbmon-watcher-{size}-"))
    d = Deployment("embedded", tmp, {"DBMON_API_PORT": str(free_port()), "DBMON_PROBE_TIMEOUT": "5"})
    try:
        make_cluster(cluster, size)
        d.migrate()
        seed_store(d, cluster, size)
        d.write_config("schema:\n  event_triggers: true\n  check_interval: 86400\n")
        watcher = d.start("watcher", "watcher")
        proc = psutil.Process(watcher.pid)
        wait_for(lambda: len(listened(cluster)) == 2, 120, what="listeners")
        time.sleep(SETTLE_SECONDS)  # the first pre-check round connects to every database once
        rss_start, pss_start = memory_mib(proc)
        cpu_before, wall_before = cpu_seconds(proc), time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_cpu_pct = 100 * (cpu_seconds(proc) - cpu_before) / (time.monotonic() - wall_before)
        rss_idle, pss_idle = memory_mib(proc)
        threads_idle = proc.num_threads()

        rng = random.Random(size)
        after_bursts = []
        cpu_before, wall_before = cpu_seconds(proc), time.monotonic()
        for n in range(BURSTS):
            burst(cluster, size, n, rng)
            time.sleep(6)  # a pre-check round (5 s) sees the pre-checked ones
            after_bursts.append(memory_mib(proc))
        burst_cpu_pct = 100 * (cpu_seconds(proc) - cpu_before) / (time.monotonic() - wall_before)
        return {"databases": size, "rss_mib_settled": rss_start, "pss_mib_settled": pss_start,
                "rss_mib_idle": rss_idle, "pss_mib_idle": pss_idle, "threads_idle": threads_idle,
                "idle_cpu_pct": round(idle_cpu_pct, 2), "idle_cpu_pct_per_database": round(idle_cpu_pct / size, 5),
                "burst_cpu_pct": round(burst_cpu_pct, 2),
                "rss_mib_after_each_burst": [r for r, _ in after_bursts],
                "pss_mib_after_each_burst": [p for _, p in after_bursts], "threads_after_bursts": proc.num_threads()}
    finally:
        d.close()
        cluster.stop()


def earlier_rows(sizes: list[int]) -> list[dict]:
    """Rows of earlier runs for other sizes: `watcher_footprint 1000` keeps the row of 100."""
    try:
        rows = json.loads((RESULTS / "watcher_footprint.json").read_text()).get("sizes", [])
    except (OSError, ValueError):
        return []
    return [r for r in rows if r.get("databases") not in sizes]


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000]
    results = earlier_rows(sizes)
    for size in sizes:
        r = one_size(size)
        results.append(r)
        results.sort(key=lambda row: row["databases"])
        path = write("watcher_footprint", {"idle_seconds": IDLE_SECONDS, "bursts": BURSTS,
                                           "burst_databases": BURST_DATABASES, "burst_statements": BURST_STATEMENTS,
                                           "sizes": results})
        print(f"{size} databases: watcher RSS {r['rss_mib_idle']} MiB, PSS {r['pss_mib_idle']} MiB idle, "
              f"{r['threads_idle']} threads, idle CPU {r['idle_cpu_pct']} % ({r['idle_cpu_pct_per_database']} % per "
              f"database); PSS after each burst {r['pss_mib_after_each_burst']}, burst CPU {r['burst_cpu_pct']} %; "
              f"written to {path}", flush=True)


if __name__ == "__main__":
    main()
