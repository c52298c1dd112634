"""What fast-tier polling costs the monitored server's throughput: pgbench TPS with dbmon polling
every second against no polling, interleaved in blocks within one long pgbench run.

    python -m bench.pg_fast_overhead [--seconds 150] [--block 6] [--warmup 10]

A private cluster (scale 5, 4 clients; fsync, synchronous_commit and full_page_writes off so
TPC-B-like is CPU-bound, not disk-bound) runs pgbench select-only (`-S`) and TPC-B-like after a
discarded warm-up run, each for `--seconds` with per-second progress (`-P 1 --progress-timestamp`).
Meanwhile this process alternates `--block`-second blocks off / on, starting and ending off; "on"
is `run_poll` every second on its kept connection (a SQLite store), as a worker would. The first
second of each block is dropped; each on block's ratio is its mean TPS over the mean of its two
neighbouring off blocks, which cancels slow drift. Reported per workload: the ratios' median,
quartiles, min/max and a bootstrap 95 % interval, polls, CPU steal (/proc/stat), and the loss
bound from measured CPU: dbmon's (process_time around run_poll) plus the kept connection's
backend's (/proc/<pid>) per poll, once a second, over the cores. Target ≥ 0.99.

Writes bench/results/pg_fast_overhead.json.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_fast_poll_cpu import backend_cpu, backend_pid, runtime  # noqa: E402
from bench.stats import percentile, write  # noqa: E402
from monitor_app.metrics.pg_fast import run_poll  # noqa: E402
from monitor_app.store.models import Asset  # noqa: E402
from tests.posture.clusters import PrivateCluster  # noqa: E402

WORKLOADS = {"select_only": ["-S"], "tpcb_like": []}
CLIENTS, SCALE = 4, 5
SERVER_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                   "shared_buffers": "256MB"}  # scale 5 is about 80 MB: every page stays cached
PROGRESS = re.compile(r"progress: ([0-9.]+) s, ([0-9.]+) tps")
BOOTSTRAP_ROUNDS = 2000


def on_cpu_seconds(pid: int) -> float | None:
    """A process's CPU seconds from /proc/<pid>/schedstat (nanoseconds), finer than utime + stime's ticks."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def cpu_ticks() -> list[int]:
    """The machine's CPU ticks: user nice system idle iowait irq softirq steal (guest is in user)."""
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]


def shares(before: list[int], after: list[int]) -> dict:
    delta = [a - b for a, b in zip(after, before, strict=True)]
    total = sum(delta) or 1
    return {"steal_pct": round(100 * delta[7] / total, 2),
            "busy_pct": round(100 * (total - delta[3] - delta[4]) / total, 1)}


class Progress:
    """pgbench's per-second reports (stderr), read as they come: (epoch end of the second, TPS)."""

    def __init__(self, stream):
        self.samples: list[tuple[float, float]] = []
        self.other: list[str] = []
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            match = PROGRESS.search(line)
            if match:
                self.samples.append((float(match.group(1)), float(match.group(2))))
                self.first.set()
            else:
                self.other.append(line.rstrip())


def pgbench(cluster: PrivateCluster, args: list[str], seconds: int, *more: str) -> subprocess.Popen:
    return subprocess.Popen(cluster.pgbench_command("-c", str(CLIENTS), "-j", "2", "-T", str(seconds), "-n", *more, *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, seconds: int) -> str:
    out, err = proc.communicate(timeout=seconds + 60)
    assert proc.returncode == 0, (err or "") + out
    return out


def run_blocks(cluster: PrivateCluster, rt, asset_id: int, extra: list[str], blocks: int, block: int) -> dict:
    """One pgbench run with the poller off in even blocks, on in odd ones, aligned to pgbench's seconds."""
    seconds = blocks * block + 2  # the first report comes after a second; one to spare at the end
    proc = pgbench(cluster, extra, seconds, "-P", "1", "--progress-timestamp")
    progress = Progress(proc.stderr)
    assert progress.first.wait(30), "pgbench reported no progress"
    t0 = progress.samples[0][0]  # block 0 starts at pgbench's first report, so reports fall inside blocks
    polls, dbmon_cpu, edges = 0, 0.0, [cpu_ticks()]
    for i in range(blocks * block):
        if (i // block) % 2 == 1:
            cpu = time.process_time()
            run_poll(rt, asset_id)
            dbmon_cpu += time.process_time() - cpu
            polls += 1
        time.sleep(max(0.0, t0 + i + 1 - time.time()))
        if (i + 1) % block == 0:
            edges.append(cpu_ticks())
    out = proc.stdout.read()  # stderr is the reader thread's, hence no communicate()
    proc.wait(timeout=60)
    progress.thread.join(timeout=10)
    assert proc.returncode == 0, "\n".join(progress.other) + out
    return {"samples": progress.samples, "t0": t0, "polls": polls, "dbmon_cpu": dbmon_cpu, "edges": edges,
            "tps_whole_run": float(m.group(1)) if (m := re.search(r"tps = ([0-9.]+)", out)) else None}


def block_means(samples: list[tuple[float, float]], t0: float, blocks: int, block: int,
                drop: int) -> tuple[list, list[int]]:
    """Mean TPS per block, without the first `drop` seconds of each; None for a block with no report."""
    per_block: list[list[float]] = [[] for _ in range(blocks)]
    for end, tps in samples:
        middle = end - 0.5 - t0  # the reported second is the one before its timestamp
        k = int(middle // block)
        if 0 <= k < blocks and middle - k * block >= drop:
            per_block[k].append(tps)
    return [statistics.fmean(v) if v else None for v in per_block], [len(v) for v in per_block]


def on_ratios(means: list) -> list[float]:
    """Each on block over the mean of the off blocks either side of it."""
    out = []
    for k in range(1, len(means) - 1, 2):
        before, on, after = means[k - 1], means[k], means[k + 1]
        if None not in (before, on, after):
            out.append(on / ((before + after) / 2))
    return out


def spread(ratios: list[float]) -> dict:
    rng = random.Random(0)
    medians = [statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(BOOTSTRAP_ROUNDS)]
    return {"median": round(statistics.median(ratios), 4), "q1": round(percentile(ratios, 0.25), 4),
            "q3": round(percentile(ratios, 0.75), 4), "min": round(min(ratios), 4), "max": round(max(ratios), 4),
            "bootstrap_ci95": [round(percentile(medians, 0.025), 4), round(percentile(medians, 0.975), 4)]}


def cpu_bound(dbmon_ms: float, backend_ticks_ms: float, backend_ns_ms: float | None, cpus: int) -> dict:
    """TPS lost at worst when the server is CPU-bound: the poll's CPU per second over every core."""
    backend_ms = backend_ticks_ms if backend_ns_ms is None else backend_ns_ms
    return {"dbmon_ms_per_poll": round(dbmon_ms, 2), "backend_ms_per_poll": round(backend_ms, 2),
            "backend_ms_per_poll_from_ticks": round(backend_ticks_ms, 2), "cpus": cpus,
            "same_host_loss_pct": round(100 * (dbmon_ms + backend_ms) / 1000 / cpus, 3),
            "server_only_loss_pct": round(100 * backend_ms / 1000 / cpus, 3)}


def measure(cluster: PrivateCluster, rt, asset_id: int, pid: int, extra: list[str], args) -> dict:
    blocks = args.seconds // args.block
    blocks -= 1 - blocks % 2  # odd: off first and last, so every on block has two off neighbours
    finish(pgbench(cluster, extra, args.warmup), args.warmup)
    opened, backend, backend_ns = rt.pg_sessions.opened, backend_cpu(pid), on_cpu_seconds(pid)
    run = run_blocks(cluster, rt, asset_id, extra, blocks, args.block)
    backend = backend_cpu(pid) - backend
    if backend_ns is not None:
        backend_ns = on_cpu_seconds(pid) - backend_ns
    assert rt.pg_sessions.opened == opened, "the poll's kept connection was replaced during the run"
    means, counts = block_means(run["samples"], run["t0"], blocks, args.block, args.drop)
    ratios = on_ratios(means)
    assert ratios, f"no complete on block among {counts}"
    edges = run["edges"]
    return {"on_blocks": len(ratios), "ratio": spread(ratios), "ratios": [round(r, 4) for r in ratios],
            "polls": run["polls"], "tps_whole_run": run["tps_whole_run"], **shares(edges[0], edges[-1]),
            "cpu_bound": cpu_bound(run["dbmon_cpu"] * 1000 / run["polls"], backend * 1000 / run["polls"],
                                   None if backend_ns is None else backend_ns * 1000 / run["polls"],
                                   os.cpu_count() or 1),
            "blocks": [{"poller": "on" if k % 2 else "off", "tps": round(m, 1) if m is not None else None,
                        "seconds": n, **shares(edges[k], edges[k + 1])}
                       for k, (m, n) in enumerate(zip(means, counts, strict=True))]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=150, help="length of each workload's measured run")
    parser.add_argument("--block", type=int, default=6, help="seconds per poller-off / poller-on block")
    parser.add_argument("--warmup", type=int, default=10, help="seconds of discarded pgbench before each run")
    parser.add_argument("--drop", type=int, default=1, help="seconds dropped at the start of each block")
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    assert args.seconds >= 3 * args.block and args.block > args.drop, "need at least off, on, off blocks"
    cluster = PrivateCluster()
    results: dict = {"seconds": args.seconds, "block": args.block, "drop": args.drop, "warmup": args.warmup,
                     "clients": CLIENTS, "scale": SCALE, "server_settings": SERVER_SETTINGS}
    started = time.monotonic()
    try:
        cluster.start(listen="", **SERVER_SETTINGS)
        done = subprocess.run(cluster.pgbench_command("-i", "-s", str(SCALE), "-q"), capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        with tempfile.TemporaryDirectory() as tmp:
            rt = runtime(f"sqlite:///{tmp}/store.sqlite3", Path(tmp))
            # A worker polling every second keeps its connection across polls; the off blocks must not
            # let it be closed as idle, or each on block would start with a new backend.
            rt.pg_sessions.idle_seconds = max(rt.pg_sessions.idle_seconds, 4.0 * args.block)
            with rt.store.session() as s:
                asset = Asset(kind="database", engine="postgresql", name="bench", source="config",
                              external_id="bench", labels={}, details={}, status="up",
                              connection=cluster.connection())
                s.add(asset)
                s.flush()
                asset_id = asset.id
            try:
                for _ in range(3):  # the kept connection, its prepared statements, the series ids
                    first = run_poll(rt, asset_id)
                assert first["samples"] and not first["problems"], first
                pid = backend_pid(cluster.dsn())
                for workload, extra in WORKLOADS.items():
                    results[workload] = r = measure(cluster, rt, asset_id, pid, extra, args)
                    print(workload, r["on_blocks"], "on blocks, ratio", r["ratio"], "polls", r["polls"],
                          "steal", r["steal_pct"], "busy", r["busy_pct"], "bound", r["cpu_bound"])
            finally:
                rt.close()
    finally:
        cluster.stop()
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    print(write("pg_fast_overhead", results), results["wall_seconds"], "s")


if __name__ == "__main__":
    main()
