"""200 PostgreSQL targets polled every 10 s on 2 workers: collection lag and worker CPU per target.

    python -m bench.metrics_scale [--clusters 2] [--databases 100] [--seconds 180]

`--clusters` private clusters with `--databases` databases each (on tmpfs when it has room), all
declared as assets; a distributed deployment (PostgreSQL store, Redis) with two `dbmon worker`
processes (the default concurrency) and beat, every default as shipped: the fast tier every 10 s,
the medium and slow tiers, reachability, and the connection budget of 3 per server. Schema checks
are pushed out of the window (a day's interval, no event triggers) so the metrics are what is
measured. After a minute of warm-up, for `--seconds`:

- collection lag of every fast-tier poll: from the time it fell due (its `due_at`) to its run
  finishing with the samples stored, from the task ledger (target: p99 below the 10 s interval);
- polls skipped because a newer one was already on its way;
- CPU of the two worker process trees per target (percent of a core) and per poll.

Writes bench/results/metrics_scale.json.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from bench.scale_databases import private_cluster, tree_cpu_seconds  # noqa: E402
from bench.stats import summary, write  # noqa: E402
from monitor_app.store.models import TaskRun  # noqa: E402
from tests.harness import Deployment, wait_for  # noqa: E402
from tests.services import free_port  # noqa: E402


def make_cluster(databases: int):
    cluster = private_cluster(databases)
    cluster.start(listen="", fsync="off", full_page_writes="off")
    for i in range(databases):
        cluster.run(f"CREATE DATABASE target_{i:03d}")
    return cluster


def config(clusters) -> str:
    lines = ["assets:"]
    for c, (cluster, databases) in enumerate(clusters):
        for i in range(databases):
            lines += [f"  - name: c{c}-db{i:03d}", "    engine: postgresql", f"    host: {cluster.root}",
                      f"    port: {cluster.port}", f"    database: target_{i:03d}", "    user: postgres",
                      "    sslmode: disable", "    insecure: true"]
    lines += ["schema:", "  event_triggers: false", "  check_interval: 86400"]
    return "\n".join(lines) + "\n"


def lags(d: Deployment, since: datetime, until: datetime) -> tuple[list[float], int, int]:
    with d.runtime.store.session() as s:
        runs = s.scalars(select(TaskRun).where(TaskRun.name == "metrics.pg_fast", TaskRun.requested_at >= since,
                                               TaskRun.requested_at < until)).all()
    out, skipped, unfinished = [], 0, 0
    for run in runs:
        due = (run.kwargs or {}).get("due_at")
        if run.finished_at is None or due is None:
            unfinished += 1
            continue
        if (run.result or {}).get("skipped"):
            skipped += 1
            continue
        out.append((run.finished_at - datetime.fromisoformat(due)).total_seconds())
    return out, skipped, unfinished


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--databases", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--warmup", type=int, default=60)
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a timeout still stops the clusters and processes
    targets = args.clusters * args.databases
    clusters = [make_cluster(args.databases) for _ in range(args.clusters)]
    tmp = Path(tempfile.mkdtemp(prefix="dbmon-metrics-scale-"))
    d = Deployment("distributed", tmp, {"DBMON_API_PORT": str(free_port()), "DBMON_REACHABILITY_INTERVAL": "30",
                                        "DBMON_TASK_LEASE_SECONDS": "30", "DBMON_TASK_QUEUED_GRACE": "60",
                                        "DBMON_REDELIVER_INTERVAL": "15", "DBMON_PROBE_TIMEOUT": "5"})
    try:
        d.migrate()
        d.write_config(config([(c, args.databases) for c in clusters]))
        workers = [d.start_worker(f"worker{i}") for i in range(2)]
        d.start("beat", "beat")
        d.cli("scan", "config", check=True)  # register the assets now, not at the first periodic sync
        wait_for(lambda: len(lags(d, datetime(2000, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc))[0])
                 >= targets, 300, interval=1.0, what="every target polled once")
        time.sleep(args.warmup)
        begin = datetime.now(timezone.utc)
        cpu_before, wall_before = sum(tree_cpu_seconds(w.pid) for w in workers), time.monotonic()
        time.sleep(args.seconds)
        cpu = sum(tree_cpu_seconds(w.pid) for w in workers) - cpu_before
        wall = time.monotonic() - wall_before
        end = datetime.now(timezone.utc)
        time.sleep(15)  # let the window's last polls finish
        lag, skipped, unfinished = lags(d, begin, end)
        polls = len(lag)
        result = {"targets": targets, "clusters": args.clusters, "interval_s": 10, "window_s": round(wall, 1),
                  "polls": polls, "expected_polls": round(targets * wall / 10), "skipped": skipped,
                  "unfinished": unfinished, "lag_s": summary(lag) if lag else None,
                  "worker_cpu_pct_of_a_core": round(100 * cpu / wall, 1),
                  "worker_cpu_pct_per_target": round(100 * cpu / wall / targets, 3),
                  "worker_cpu_ms_per_poll": round(1000 * cpu / max(polls, 1), 2)}
        result["target_met"] = bool(lag) and result["lag_s"]["p99"] < 10
    finally:
        d.close()
        for c in clusters:
            c.stop()
    path = write("metrics_scale", result)
    print(f"{targets} targets: {polls} polls of {result['expected_polls']} expected, {skipped} skipped, "
          f"{unfinished} unfinished; lag median {result['lag_s']['median']:.2f} s, p99 {result['lag_s']['p99']:.2f} s; "
          f"workers {result['worker_cpu_pct_of_a_core']} % of a core, {result['worker_cpu_pct_per_target']} % "
          f"per target, {result['worker_cpu_ms_per_poll']} ms per poll (all tiers) -> {path}")


if __name__ == "__main__":
    main()
