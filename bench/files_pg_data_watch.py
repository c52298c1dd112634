"""The derived PostgreSQL watches under a write load: what the watcher's file source receives,
leaves out and pushes as scans, and the CPU it spends doing so, while pgbench runs.

Per mode, a fresh private PostgreSQL 15 cluster (tests/posture/clusters.py, on this machine's
disk), with --databases extra databases copied from template1 if asked. A child process runs only
the file source (FileChangesSource on a real watchdog observer) over the cluster's derived watches
(`data`, `wal`, `config`, as `for_postgresql` makes them) stored in a SQLite store; its tasks are
counted, not sent. Phases: idle, `pgbench -i -s SCALE`, then `pgbench -c CLIENTS -T SECONDS`. Per
phase: watchdog events received (by type), (path, watch) pairs left out by a watch's globs, the
scans pushed (event scans, full rescans) and the paths they named, and the child's CPU seconds
(user + system). With --databases, a phase before pgbench runs VACUUM in each extra database and
then a CHECKPOINT, which writes catalog files of every database at once. Also a full scan (tree_scan.scan) of the data directory with the data watch's
spec after the load: entries and seconds, what each full rescan costs the worker.

Modes: `now` (the shipped derived spec and watcher: the `data` and `wal` watches report no
content, so their inotify watches ask for no writes), `all_events` (the same globs, every watch
asking the kernel for every event, as before quiet watches were), `before` (every event asked for,
the data watch excluding only pg_wal, and every covered path counted toward the scans, as before
server-written files were left out of the derived watch).

    python -m bench.files_pg_data_watch [--scale 20] [--clients 4] [--seconds 60] [--databases 0]
        [--modes before,all_events,now]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from bench.stats import write  # noqa: E402
from tests.posture.clusters import PrivateCluster  # noqa: E402

IDLE_S = 10.0


def _locations(data: str) -> dict:
    return {"data_directory": data, "config_file": f"{data}/postgresql.conf", "hba_file": f"{data}/pg_hba.conf",
            "ident_file": f"{data}/pg_ident.conf"}


def _watches(mode: str, data: str):
    from monitor_app.files.watch_targets import for_postgresql

    watches = for_postgresql(1, _locations(data))
    if mode == "before":
        for w in watches:
            if w.kinds == ("data",):
                w.spec["exclude"] = ["pg_wal"]
    return watches


def child(mode: str, data: str, work: str) -> None:
    """The file source alone, over the cluster's derived watches; a snapshot of its counters on
    every line read from stdin, until stdin closes."""
    from monitor_app.config.settings import load_settings
    from monitor_app.platform.runtime import Runtime
    from monitor_app.store import Store
    from monitor_app.store.migrate import upgrade
    from monitor_app.store.models.files import FileWatch
    from workers.watch_sources import file_changes

    if mode == "before":
        file_changes._Root.leaves_out = lambda self, path, is_dir: False  # type: ignore[method-assign]
    if mode in ("before", "all_events"):
        from watchdog.observers.inotify import InotifyObserver

        class AllEvents(InotifyObserver):
            def __init__(self, *, quiet: bool):
                super().__init__()

        file_changes.MaskedObserver = AllEvents  # type: ignore[misc, assignment]
    url = f"sqlite:///{work}/dbmon.sqlite3"
    upgrade(url)
    store = Store(url)
    settings = load_settings(_env_file=None, data_dir=Path(work), database_url=url, secret_key="bench",
                             config_file=Path(work) / "none.yaml")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    with store.session() as s:
        for i, w in enumerate(_watches(mode, data)):
            s.add(FileWatch(key=f"k{i}", path=w.path, source="postgresql", kinds=list(w.kinds), spec=w.spec,
                            status="ok", errors={}, baseline_ready=False, pending_restart=[]))
    tasks: Counter = Counter()
    named = Counter()

    def emit(task, kwargs):
        tasks[kwargs.get("reason", "?")] += 1
        named["paths"] += len(kwargs.get("paths", []))
        return "run"

    by_type: Counter = Counter()
    by_area: Counter = Counter()

    class Counting(file_changes.FileChangesSource):
        def _on_event(self, event):  # under the source's lock: two observers dispatch
            by_type[("dir " if event.is_directory else "") + event.event_type] += 1
            rel = os.fsdecode(event.src_path)[len(data) + 1:]
            by_area[rel.split("/", 1)[0] if "/" in rel else "(top level)"] += 1
            super()._on_event(event)

    source = Counting(rt, emit)
    source.start()
    print("ready", flush=True)
    for _ in sys.stdin:
        source.flush(everything=True)
        print(json.dumps({"received": source.events_received, "left_out": source.paths_left_out,
                          "by_type": dict(by_type), "by_area": dict(by_area), "tasks": dict(tasks),
                          "paths_named": named["paths"]}), flush=True)
    source.stop()
    store.dispose()


class Child:
    def __init__(self, mode: str, data: str, work: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.files_pg_data_watch", "--child", mode, data, work],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=Path(__file__).resolve().parents[1])
        assert self.proc.stdout.readline().strip() == "ready"
        self.ps = psutil.Process(self.proc.pid)

    def snapshot(self) -> dict:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        t = self.ps.cpu_times()
        out["cpu_s"] = t.user + t.system
        return out

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _delta(a: dict, b: dict) -> dict:
    def sub(x, y):
        if isinstance(y, dict):
            return {k: sub(x.get(k, 0), v) for k, v in y.items() if sub(x.get(k, 0), v)}
        return round(y - x, 3) if isinstance(y, float) else y - x
    out = {k: sub(a.get(k, 0 if not isinstance(v, dict) else {}), v) for k, v in b.items()}
    if out["received"]:
        out["cpu_us_per_event"] = round(out["cpu_s"] / out["received"] * 1e6, 1)
    return out


def _pgbench(cluster: PrivateCluster, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(cluster.pgbench_command(*args), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    return round(time.monotonic() - started, 1)


def run_mode(mode: str, args) -> dict:
    from monitor_app.files.tree_scan import ScanSpec, scan

    cluster = PrivateCluster()
    work = tempfile.mkdtemp(prefix="dbmon-bench-pgdata-")
    child_proc = None
    try:
        cluster.start(listen="")
        for i in range(args.databases):
            cluster.run(f"CREATE DATABASE extra_{i}")
        data = str(cluster.data)
        child_proc = Child(mode, data, work)
        phases = {}
        last = child_proc.snapshot()
        time.sleep(IDLE_S)
        now = child_proc.snapshot()
        phases["idle"], last = {"seconds": IDLE_S, **_delta(last, now)}, now
        if args.databases:
            started = time.monotonic()
            for i in range(args.databases):  # every database's catalogs written, then flushed at once
                cluster.run("VACUUM", database=f"extra_{i}")
            cluster.run("CHECKPOINT")
            took = round(time.monotonic() - started, 1)
            time.sleep(2.0)
            now = child_proc.snapshot()
            phases["vacuum_every_database"], last = {"seconds": took, **_delta(last, now)}, now
        took = _pgbench(cluster, "-i", "-s", str(args.scale), "-q")
        time.sleep(2.0)  # the last flushes
        now = child_proc.snapshot()
        phases["pgbench_init"], last = {"seconds": took, **_delta(last, now)}, now
        took = _pgbench(cluster, "-c", str(args.clients), "-T", str(args.seconds), "-n")
        time.sleep(2.0)
        now = child_proc.snapshot()
        phases["pgbench_run"] = {"seconds": took, **_delta(last, now)}
        (data_watch,) = [w for w in _watches(mode, data) if w.kinds == ("data",)]
        started = time.monotonic()
        result = scan(ScanSpec.of_watch(data, data_watch.spec))
        full_scan = {"entries": len(result.states), "seconds": round(time.monotonic() - started, 3),
                     "entries_on_disk": sum(len(d) + len(f) for _, d, f in os.walk(data)) + 1}
        return {"phases": phases, "full_scan_of_data_watch": full_scan}
    finally:
        if child_proc is not None:
            child_proc.close()
        cluster.stop()
        subprocess.run(["rm", "-rf", work], check=False)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--databases", type=int, default=0)
    parser.add_argument("--modes", default="before,all_events,now")
    args = parser.parse_args()
    runs = {}
    for mode in args.modes.split(","):
        runs[mode] = run_mode(mode, args)
        print(mode, json.dumps(runs[mode], indent=1), flush=True)
    path = write("files_pg_data_watch", {"scale": args.scale, "clients": args.clients, "seconds": args.seconds,
                                         "databases": args.databases, "runs": runs})
    print(path)


if __name__ == "__main__":
    main()
