"""The watcher's idle cost with a 100,000-file tree watched: CPU % of one core and memory.

A tree of --files empty files in --dirs directories (two levels: 10 top directories, the rest
spread under them), written once under --dir (default /dev/shm, a tmpfs: 100,000 creates on
this machine's ext4 take minutes, and the idle cost does not depend on where the files are).
Each run is a fresh embedded deployment (SQLite store, filesystem broker polled at the shipped
0.1 s): a `dbmon worker` records the watch's baseline (kind `data`), then `dbmon watcher --source
files` starts, schedules its recursive inotify watch and pushes its start-up full rescan, which the
worker runs. Once that is done the watcher's process tree is sampled over --idle seconds: CPU
(psutil cpu_times delta, user + system, as % of one core) and memory (USS and PSS from
memory_full_info, summed over the process and its children), and the inotify watches it holds.
The worker's idle CPU over the same window is given beside it (its broker polling, not the files).

Also reported, from the task ledger: how long the baseline scan and the start-up rescan took in the
worker (files.scan started -> finished, which includes reading and writing the store).

    python -m bench.files_watcher_idle [--files 100000] [--dirs 1000] [--idle 30] [--runs 3]
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

import psutil  # noqa: E402

from bench.files_burst_recovery import default_tree_parent, filesystem_of  # noqa: E402
from bench.files_detection_latency import deploy_with_watch, run_seconds, scan_runs, start_file_watcher  # noqa: E402
from bench.stats import write  # noqa: E402

SETTLE_S = 2.0


def build_tree(root: Path, files: int, dirs: int) -> None:
    per_dir = max(1, -(-files // dirs))
    for i in range(files):
        if i % per_dir == 0:
            directory = root / f"top{(i // per_dir) % 10}" / f"sub{i // per_dir:04d}"
            directory.mkdir(parents=True)
        open(directory / f"rel{i:06d}", "wb").close()


def process_tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def memory_mib(procs: list[psutil.Process]) -> dict:
    uss = pss = rss = 0
    for p in procs:
        info = p.memory_full_info()
        uss, pss, rss = uss + info.uss, pss + info.pss, rss + info.rss
    return {"uss_mib": round(uss / 2**20, 1), "pss_mib": round(pss / 2**20, 1), "rss_mib": round(rss / 2**20, 1)}


def inotify_watches(procs: list[psutil.Process]) -> int:
    """Watches held by the processes' inotify descriptors (one `inotify wd:` line each in fdinfo)."""
    count = 0
    for p in procs:
        fd_dir = f"/proc/{p.pid}/fdinfo"
        for fd in os.listdir(fd_dir):
            try:
                with open(f"{fd_dir}/{fd}") as f:
                    count += sum(line.startswith("inotify wd:") for line in f)
            except OSError:
                pass
    return count


def one_run(tree: Path, idle_s: float, polling: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="dbmon-bench-") as tmp:
        d = deploy_with_watch("embedded", Path(tmp) / "deployment", f"watch:\n  - path: {tree}\n    kinds: [data]\n",
                              polling, baseline_timeout=900)
        try:
            start_file_watcher(d, timeout=900)
            runs = [r for r in scan_runs(d) if r.status == "done"]
            baseline = next(r for r in runs if r.kwargs.get("reason") == "baseline")
            startup = next(r for r in runs if r.requested_by == "watcher")
            time.sleep(SETTLE_S)
            watcher = process_tree(d.procs["watcher"].pid)
            worker = process_tree(d.procs["worker"].pid)
            w0, k0, t0 = cpu_seconds(watcher), cpu_seconds(worker), time.monotonic()
            time.sleep(idle_s)
            w1, k1, t1 = cpu_seconds(watcher), cpu_seconds(worker), time.monotonic()
            out = {"watcher_cpu_pct": round(100 * (w1 - w0) / (t1 - t0), 3), **memory_mib(watcher),
                   "watcher_processes": len(watcher), "watcher_threads": sum(p.num_threads() for p in watcher),
                   "inotify_watches": inotify_watches(watcher),
                   "worker_cpu_pct": round(100 * (k1 - k0) / (t1 - t0), 3),
                   "baseline_scan_s": round(run_seconds(baseline) or 0.0, 2),
                   "baseline_entries": (baseline.result or {}).get("read"),
                   "startup_rescan_s": round(run_seconds(startup) or 0.0, 2),
                   "startup_rescan_changes": (startup.result or {}).get("changes")}
        finally:
            d.close()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--dirs", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=30.0, help="seconds sampled once the watcher is idle")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--polling", type=float, default=0.1, help="filesystem broker polling interval")
    ap.add_argument("--dir", default=default_tree_parent(), help="where the tree is built (default /dev/shm)")
    args = ap.parse_args(argv if argv is not None else [])
    load_before = [round(x, 2) for x in os.getloadavg()]  # a shared machine: say how busy it was
    with tempfile.TemporaryDirectory(prefix="dbmon-bench-data-", dir=args.dir) as tmp:
        t0 = time.perf_counter()
        build_tree(Path(tmp), args.files, args.dirs)
        build_s = time.perf_counter() - t0
        print(f"tree of {args.files} files built in {build_s:.1f} s", flush=True)
        runs = []
        for r in range(args.runs):
            runs.append(one_run(Path(tmp), args.idle, args.polling))
            print(f"run {r + 1}: {runs[-1]}", flush=True)
    medians = {k: round(statistics.median(x[k] for x in runs), 3) for k in (
        "watcher_cpu_pct", "uss_mib", "pss_mib", "rss_mib", "worker_cpu_pct", "baseline_scan_s", "startup_rescan_s")}
    path = write("files_watcher_idle", {
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "what": "`dbmon watcher --source files` idle with a large tree watched (kind data), embedded mode",
        "files": args.files, "directories": args.dirs, "tree_parent": args.dir, "filesystem": filesystem_of(args.dir),
        "idle_s": args.idle, "filesystem_polling_interval_s": args.polling, "medians": medians, "runs": runs})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
