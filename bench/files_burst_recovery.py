"""A burst of 50,000 new files under a `log` watch: every one must be recorded exactly once.

Real `dbmon watcher --source files` and `dbmon worker` processes. Once the watch is baselined and
the watcher live, a Python loop creates --files files (open, write, close) as fast as it can, in
new subdirectories of --per-dir files each. The tree is written under --dir, by default /dev/shm
(a tmpfs), where a file is created in about 25 us: far more than the 500 paths a 0.15 s flush
carries, so the watcher folds the burst into full rescans, and the kernel's queue (16,384 events by
default) may overflow if the watcher reads too slowly. On a disk where a create takes about 1 ms
(this machine's ext4: `--dir /tmp`) the burst lasts a minute, the flushes stay under 500 paths and
the worker gets an event scan naming about a hundred paths every 0.15 s. What is measured is
whether the rescans and event scans together record every file once, and how long that takes.

Reported per run: distinct `file_changes` rows of type `created` among the burst's files (target:
all of them), duplicates (target 0, counted once every scan pushed has run), the time from the
last write to the moment the bench saw the last one stored (polled every 0.25 s), to the last
row's `observed_at` (when its scan read the disk) and until no pushed scan was left queued or
running; whether the watcher logged an inotify overflow; the `files.scan` runs the watcher pushed
(full rescans, and event scans with the distinct paths they named) and the worker time they took
(started -> finished, which includes waiting for the watch's lock: scans of one watch run one at
a time); how the rows were found (reason `event` or `rescan`).

"inotify alone": the same burst watched by a bare watchdog observer in its own process (no dbmon
running), counting the distinct files it reported created, vs --files. That is what a watcher
that trusted its events would have recorded.

    python -m bench.files_burst_recovery [--files 50000] [--per-dir 1000] [--runs 2] [--modes embedded,distributed]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from monitor_app.store.models import Event  # noqa: E402
from monitor_app.store.models.files import FileChange  # noqa: E402
from tests.harness import Deployment  # noqa: E402

from bench.files_detection_latency import deploy_with_watch, run_seconds, scan_runs, start_file_watcher  # noqa: E402
from bench.stats import write  # noqa: E402

QUIET_GIVE_UP_S = 20.0  # nothing queued or running and no new row for this long: what is missing stays missing

# A bare watchdog observer: counts the distinct regular files it is told were created, until stdin closes.
PROBE = r"""
import json, logging, os, sys, time
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

created, overflows = set(), []
class Overflow(logging.Handler):
    def emit(self, record):
        if "overflow" in record.getMessage().lower():
            overflows.append(1)
logging.getLogger("watchdog").addHandler(Overflow(logging.WARNING))

class Count(FileSystemEventHandler):
    def on_created(self, event):
        if not event.is_directory:
            created.add(os.fsdecode(event.src_path))

observer = Observer()
observer.schedule(Count(), sys.argv[1], recursive=True)
observer.start()
print("ready", flush=True)
sys.stdin.read()
time.sleep(3)  # let the observer drain its queue
observer.stop()
observer.join()
print(json.dumps({"created": len(created), "overflows": len(overflows)}), flush=True)
"""


def default_tree_parent() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def filesystem_of(path: str) -> str:
    """The type of the mount holding `path` (the longest mount point that prefixes it)."""
    best, kind = "", "unknown"
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and (path == fields[1] or path.startswith(fields[1].rstrip("/") + "/")) \
                    and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    return kind


def burst(root: Path, files: int, per_dir: int) -> tuple[float, float]:
    """Create the files; returns (seconds it took, wall clock right after the last write)."""
    t0 = time.perf_counter()
    directory = root
    for i in range(files):
        if i % per_dir == 0:
            directory = root / f"d{i // per_dir:03d}"
            directory.mkdir()
        with open(directory / f"f{i:06d}.log", "w") as f:
            f.write("x\n")
    return time.perf_counter() - t0, time.time()


def created_rows(d: Deployment, root: Path) -> dict[str, int]:
    """Path -> number of `created` rows, for the burst's files."""
    with d.runtime.store.session() as s:
        return dict(s.execute(select(FileChange.path, func.count()).where(
            FileChange.type == "created", FileChange.path.like(f"{root}/%.log")).group_by(FileChange.path)).all())


def distinct_created(d: Deployment, root: Path) -> int:
    with d.runtime.store.session() as s:
        return s.scalar(select(func.count(func.distinct(FileChange.path))).where(
            FileChange.type == "created", FileChange.path.like(f"{root}/%.log")))


def wait_for_recovery(d: Deployment, root: Path, files: int, timeout: float) -> float | None:
    """Poll until every file is recorded (returns the wall clock it was seen), or until nothing is
    queued or running and no row came for QUIET_GIVE_UP_S, or the timeout (returns None)."""
    deadline = time.monotonic() + timeout
    last_count, last_progress = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = distinct_created(d, root)
        if count >= files:
            return time.time()
        if count != last_count:
            last_count, last_progress = count, time.monotonic()
        busy = any(r.status in ("queued", "running") for r in scan_runs(d))
        if not busy and time.monotonic() - last_progress > QUIET_GIVE_UP_S:
            return None
        time.sleep(0.25)
    return None


def wait_for_drain(d: Deployment, timeout: float) -> float | None:
    """The wall clock once no `files.scan` run is queued or running (None: still busy at the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(r.status in ("queued", "running") for r in scan_runs(d)):
            return time.time()
        time.sleep(0.25)
    return None


def ledger_figures(d: Deployment, since: float) -> dict:
    runs = [r for r in scan_runs(d) if r.requested_by == "watcher" and r.requested_at.timestamp() >= since]
    full = [r for r in runs if not r.kwargs.get("paths")]
    named = [p for r in runs for p in r.kwargs.get("paths") or []]
    files = {p for p in named if p.endswith(".log")}
    busy = [run_seconds(r) or 0.0 for r in runs]
    return {"scan_runs": len(runs), "full_rescans": len(full),
            "full_rescan_reasons": sorted({r.kwargs.get("reason", "") for r in full}),
            "event_scans": len(runs) - len(full), "paths_named": len(named), "distinct_paths_named": len(set(named)),
            "distinct_files_named": len(files), "directories_named": len({p for p in named if not p.endswith(".log")}),
            "worker_seconds_in_scans": round(sum(busy), 2), "longest_scan_s": round(max(busy, default=0.0), 2),
            "not_done": [f"{r.status} {r.error}" for r in runs if r.status != "done"][:5]}


def one_run(mode: str, files: int, per_dir: int, polling: float, timeout: float, tree_parent: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="dbmon-bench-") as tmp, \
            tempfile.TemporaryDirectory(prefix="dbmon-bench-logs-", dir=tree_parent) as tree:
        logs = Path(tree)
        d = deploy_with_watch(mode, Path(tmp) / "deployment", f"watch:\n  - path: {logs}\n    kinds: [log]\n", polling)
        try:
            start_file_watcher(d)
            since = time.time()
            write_s, last_write = burst(logs, files, per_dir)
            complete_at = wait_for_recovery(d, logs, files, timeout)
            # Duplicates would come from the rescans still queued: count once they have all run.
            drained_at = wait_for_drain(d, max(10.0, timeout - (time.time() - last_write)))
            rows = created_rows(d, logs)
            with d.runtime.store.session() as s:
                last_observed = s.scalar(select(func.max(FileChange.observed_at)).where(
                    FileChange.type == "created", FileChange.path.like(f"{logs}/%.log")))
                by_reason = dict(s.execute(select(FileChange.reason, func.count()).where(
                    FileChange.type == "created", FileChange.path.like(f"{logs}/%.log"))
                    .group_by(FileChange.reason)).all())
                events = [p for (p,) in s.execute(select(Event.payload).where(Event.type == "file.created"))]
            overflow_lines = [ln for ln in d.log("watcher").splitlines() if "overflow" in ln.lower()]
            ledger = ledger_figures(d, since)
        finally:
            d.close()
    return {"files": files, "write_s": round(write_s, 2), "recorded": len(rows), "recorded_pct": round(
        100 * len(rows) / files, 3), "duplicates": sum(n - 1 for n in rows.values()),
            "complete_after_last_write_s": round(complete_at - last_write, 2) if complete_at else None,
            "scans_drained_after_last_write_s": round(drained_at - last_write, 2) if drained_at else None,
            "last_row_observed_after_last_write_s": round(last_observed.timestamp() - last_write, 2)
            if last_observed else None,
            "rows_by_reason": by_reason, "created_events": len(events),
            # The burst's directories are created too: the events count them with the files.
            "created_events_count_sum": sum(e.get("count", 1) for e in events),
            "directories": -(-files // per_dir),
            "watcher_logged_overflow": bool(overflow_lines), "overflow_log_lines": len(overflow_lines),
            "watcher_pushed": ledger, "inotify_named_files_pct": round(100 * ledger["distinct_files_named"] / files, 2)}


def inotify_alone(files: int, per_dir: int, tree_parent: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="dbmon-bench-probe-", dir=tree_parent) as tmp:
        probe = subprocess.Popen([sys.executable, "-c", PROBE, tmp], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
        try:
            ready = probe.stdout.readline() if probe.stdout else ""
            if ready.strip() != "ready":
                raise RuntimeError(f"the inotify probe did not start: {ready!r}")
            write_s, _ = burst(Path(tmp), files, per_dir)
            out, _ = probe.communicate("", timeout=120)
        finally:
            if probe.poll() is None:
                probe.kill()
                probe.wait()
    seen = json.loads(out.strip().splitlines()[-1])
    return {"files": files, "write_s": round(write_s, 2), "reported_created": seen["created"],
            "reported_pct": round(100 * seen["created"] / files, 2), "overflows": seen["overflows"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--per-dir", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--modes", default="embedded,distributed",
                    help="embedded: SQLite + filesystem broker; distributed: PostgreSQL + Redis")
    ap.add_argument("--polling", type=float, default=0.1, help="filesystem broker polling interval (embedded)")
    ap.add_argument("--timeout", type=float, default=240.0, help="give up waiting for the rows after this")
    ap.add_argument("--dir", default=default_tree_parent(),
                    help="where the burst is written (default: /dev/shm, a tmpfs, when there is one)")
    ap.add_argument("--no-probe", action="store_true", help="skip the bare-inotify comparison")
    args = ap.parse_args(argv if argv is not None else [])
    load_before = [round(x, 2) for x in os.getloadavg()]  # a shared machine: say how busy it was
    probe = None
    if not args.no_probe:
        probe = inotify_alone(args.files, args.per_dir, args.dir)
        print(f"inotify alone: {probe}", flush=True)
    modes = {}
    for mode in args.modes.split(","):
        runs = []
        for r in range(args.runs):
            runs.append(one_run(mode, args.files, args.per_dir, args.polling, args.timeout, args.dir))
            print(f"{mode} run {r + 1}: {runs[-1]}", flush=True)
        complete = [x["complete_after_last_write_s"] for x in runs if x["complete_after_last_write_s"] is not None]
        modes[mode] = {"runs": runs, "recorded_pct_min": min(x["recorded_pct"] for x in runs),
                       "duplicates": sum(x["duplicates"] for x in runs),
                       "complete_after_last_write_s": round(statistics.median(complete), 2) if complete else None,
                       "write_s": round(statistics.median(x["write_s"] for x in runs), 2),
                       "full_rescans": statistics.median(x["watcher_pushed"]["full_rescans"] for x in runs),
                       "overflow_in_runs": sum(x["watcher_logged_overflow"] for x in runs)}
        modes[mode]["meets_target"] = modes[mode]["recorded_pct_min"] == 100 and modes[mode]["duplicates"] == 0
    path = write("files_burst_recovery", {
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "what": "new files created in a burst under a log watch -> distinct `created` rows stored, through "
                "`dbmon watcher --source files` + `dbmon worker` processes",
        "files": args.files, "per_dir": args.per_dir, "tree_parent": args.dir, "filesystem": filesystem_of(args.dir),
        "filesystem_polling_interval_s": args.polling,
        "target": "100 % recorded, 0 duplicates", "inotify_alone": probe, "modes": modes})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
