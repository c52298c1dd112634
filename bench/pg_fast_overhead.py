"""What fast-tier polling costs the monitored server's throughput: pgbench TPS with dbmon polling
every second against no polling, in interleaved pairs.

    python -m bench.pg_fast_overhead [--pairs 5] [--seconds 8]

A private cluster (scale 5, 4 clients) runs pgbench select-only (`-S`) and TPC-B-like (default
script) for `--seconds` per run. Each pair runs both modes back to back, the order alternating
between pairs; "polling" is `run_poll` every second on its kept connection from this process (a
SQLite store), as a worker would. Reported per workload: each pair's ratio (TPS polling / TPS
not), their median and spread (min, max). Target: median ≥ 0.99.

Writes bench/results/pg_fast_overhead.json.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_fast_poll_cpu import runtime  # noqa: E402
from bench.stats import write  # noqa: E402
from monitor_app.metrics.pg_fast import run_poll  # noqa: E402
from monitor_app.store.models import Asset  # noqa: E402
from tests.posture.clusters import PG_BIN, PrivateCluster  # noqa: E402

WORKLOADS = {"select_only": ["-S"], "tpcb_like": []}


class Poller:
    def __init__(self, rt, asset_id: int, every: float = 1.0):
        self.rt, self.asset_id, self.every = rt, asset_id, every
        self.stop_event = threading.Event()
        self.polls = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.every):
            run_poll(self.rt, self.asset_id)
            self.polls += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(timeout=10)


def pgbench(cluster: PrivateCluster, args: list[str], seconds: int) -> float:
    done = subprocess.run([str(PG_BIN / "pgbench"), "-h", str(cluster.root), "-p", str(cluster.port), "-U",
                           "postgres", "-c", "4", "-j", "2", "-T", str(seconds), "-n", *args, "postgres"],
                          capture_output=True, text=True, timeout=seconds + 60)
    assert done.returncode == 0, done.stderr
    match = re.search(r"tps = ([0-9.]+)", done.stdout)
    assert match, done.stdout
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    cluster = PrivateCluster()
    results: dict = {"pairs": args.pairs, "seconds": args.seconds, "clients": 4, "scale": 5}
    try:
        cluster.start(listen="")
        done = subprocess.run([str(PG_BIN / "pgbench"), "-h", str(cluster.root), "-p", str(cluster.port), "-U",
                               "postgres", "-i", "-s", "5", "-q", "postgres"], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        with tempfile.TemporaryDirectory() as tmp:
            rt = runtime(f"sqlite:///{tmp}/store.sqlite3", Path(tmp))
            with rt.store.session() as s:
                asset = Asset(kind="database", engine="postgresql", name="bench", source="config",
                              external_id="bench", labels={}, details={}, status="up",
                              connection=cluster.connection())
                s.add(asset)
                s.flush()
                asset_id = asset.id
            run_poll(rt, asset_id)
            try:
                for workload, extra in WORKLOADS.items():
                    ratios, pairs = [], []
                    for i in range(args.pairs):
                        tps = {}
                        for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
                            if mode == "on":
                                with Poller(rt, asset_id) as poller:
                                    tps[mode] = pgbench(cluster, extra, args.seconds)
                                tps["polls"] = poller.polls
                            else:
                                tps[mode] = pgbench(cluster, extra, args.seconds)
                        pairs.append(tps)
                        ratios.append(tps["on"] / tps["off"])
                    results[workload] = {"pairs": pairs, "ratio_median": round(statistics.median(ratios), 4),
                                         "ratio_min": round(min(ratios), 4), "ratio_max": round(max(ratios), 4)}
                    print(workload, results[workload]["ratio_median"], results[workload]["ratio_min"],
                          results[workload]["ratio_max"])
            finally:
                rt.close()
    finally:
        cluster.stop()
    print(write("pg_fast_overhead", results))


if __name__ == "__main__":
    main()
