"""MariaDB DDL -> `schema.changed` stored, found by the scheduled check alone, and what that check costs.

MySQL has no event trigger: a change is seen by the scheduled `schema.check`, which reads the cheap
pre-check marker and snapshots only when it moved. Here the asset's `schema.assets.<name>.check_interval`
is --interval (5 s) and the beat's schema sweep runs every --tick seconds (DBMON_SWEEP_TICK, shipped
5 s; 1 s here, else the sweep, not the interval, sets the resolution: the PostgreSQL bench runs its
scheduled checks in-process and has no sweep to tune). Real `dbmon worker` + `dbmon beat` processes
(`tests/harness.py` Deployment), embedded (SQLite + filesystem broker, polled every 0.1 s as shipped)
and distributed (PostgreSQL + Redis), each on its own throwaway MariaDB database.

Latency: N `ALTER TABLE bench_t ADD COLUMN c<i> INT`, each issued a random 3-8 s after the previous
one (not after its detection: waiting for that would put every DDL just after a check, the worst
phase), so they fall at every phase of the interval; per DDL, the first stored `schema.changed`
event naming column c<i>, its `detected_at` minus the wall clock read right after the statement
returned (same host, same clock). Two DDLs between two checks share one event. Target: every DDL
stored within one interval plus the sweep tick.

Load: `SHOW GLOBAL STATUS` Questions, Com_select and Connections over --idle seconds with no dbmon
touching the server (measured while the deployments start, before the asset is in their config),
then over as long with the embedded deployment checking an unchanged schema; the difference is
dbmon's. The asset's metrics polling is turned off and reachability probes are hourly (the harness
timing), so that difference is the schema checks alone. The shared server may have other clients:
`other_connections` says how many connected during the quiet window. CPU of the worker's and the
beat's process groups over the busy window (every beat sweep included, not only schema checks),
then, with the beat stopped, the check itself in this process: `run_check` on an unchanged schema,
CPU (store write included), wall time and Questions per check.

    python -m bench.mysql_detection_latency [--ddl 20] [--interval 5] [--tick 1] [--idle 60] [--seed 1]

Writes bench/results/mysql_detection_latency.json.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import sys
import tempfile
import time
from datetime import timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402

from bench.stats import summary, write  # noqa: E402
from monitor_app.schema.check import run_check  # noqa: E402
from monitor_app.store.models import Asset, Event, TaskRun  # noqa: E402
from monitor_app.store.models.schema import SchemaSnapshot  # noqa: E402
from tests.harness import Deployment, wait_for  # noqa: E402
from tests.schema.mysql_scratch import admin_connect  # noqa: E402

ASSET = "bench-mariadb"
STATUS = ("Questions", "Com_select", "Connections")
TICK = os.sysconf("SC_CLK_TCK")
COLUMN = re.compile(r"(?:^|\.)c(\d+)$")


def global_status(admin) -> dict[str, int]:
    with admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN (%s, %s, %s)", STATUS)
        return {name: int(value) for name, value in cur.fetchall()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in STATUS}


def group_cpu(pgid: int) -> float:
    """utime + stime of every live process in a process group (a worker and its pool), seconds."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def config_yaml(database: str, interval: float) -> str:
    return (f"assets:\n  - name: {ASSET}\n    engine: mariadb\n    host: 127.0.0.1\n    port: 3306\n"
            f"    user: root\n    database: {database}\n    sslmode: disable\n    insecure: true\n"
            f"schema:\n  assets:\n    {ASSET}:\n      check_interval: {interval}\n"
            # Only the schema checks talk to the server, so the load measured is theirs.
            f"metrics:\n  assets:\n    {ASSET}:\n      enabled: false\n")


def prepare(mode: str, workdir: Path, tick: float) -> Deployment:
    """Store migrated, worker ready, no asset yet: nothing of it touches MariaDB. The caller closes it."""
    d = Deployment(mode, workdir, {"DBMON_SWEEP_TICK": str(tick), "DBMON_FILESYSTEM_POLLING_INTERVAL": "0.1"})
    try:
        d.tmp.mkdir(parents=True, exist_ok=True)
        d.migrate()
        d.write_config("{}\n")
        d.start_worker()
    except BaseException:
        d.close()
        raise
    return d


def watch(d: Deployment, database: str, interval: float) -> int:
    """Put the asset in the config, sync it, start the beat; return once its baseline is stored."""
    d.write_config(config_yaml(database, interval))
    d.scan("assets.sync_config")
    with d.runtime.store.session() as s:
        asset_id = s.scalar(select(Asset.id).where(Asset.name == ASSET))
    d.start("beat", "beat")

    def baselined() -> bool:
        with d.runtime.store.session() as s:
            return s.scalar(select(SchemaSnapshot.id).where(SchemaSnapshot.asset_id == asset_id)) is not None

    wait_for(baselined, 60, interval=0.2, what="the first scheduled check (baseline)")
    return asset_id


def detections(d: Deployment, asset_id: int) -> dict[int, float]:
    """Column number -> detected_at (epoch seconds) of the first schema.changed event adding c<i>."""
    found: dict[int, float] = {}
    with d.runtime.store.session() as s:
        rows = s.execute(select(Event.payload, Event.detected_at).where(
            Event.type == "schema.changed", Event.asset_id == asset_id).order_by(Event.id)).all()
    for payload, detected in rows:
        at = (detected if detected.tzinfo else detected.replace(tzinfo=timezone.utc)).timestamp()
        for change in (payload or {}).get("changes") or []:
            match = COLUMN.search(str(change.get("object", "")))
            if change.get("object_type") == "column" and change.get("action") == "added" and match:
                found.setdefault(int(match.group(1)), at)
    return found


def ddl_latency(d: Deployment, asset_id: int, db, ddl: int, interval: float, tick: float,
                rng: random.Random) -> dict:
    done: list[float] = []
    for i in range(ddl):
        with db.cursor() as cur:
            cur.execute(f"ALTER TABLE bench_t ADD COLUMN c{i} INT")
        done.append(time.time())
        if i + 1 < ddl:
            time.sleep(max(0.0, done[-1] + rng.uniform(3, 8) - time.time()))
    try:
        wait_for(lambda: len(detections(d, asset_id)) >= ddl, 3 * interval + 10, interval=0.2,
                 what="every DDL stored")
    except AssertionError:
        pass  # reported as missed below
    found = detections(d, asset_id)
    latencies = [found[i] - at for i, at in enumerate(done) if i in found]
    with d.runtime.store.session() as s:
        events = len(s.scalars(select(Event.id).where(Event.type == "schema.changed",
                                                       Event.asset_id == asset_id)).all())
    out = {k: round(v, 3) for k, v in summary(latencies).items()} if latencies else {"n": 0}
    return {**out, "ddl": ddl, "last_ddl_at": done[-1], "detected": len(latencies),
            "missed": [i for i in range(ddl) if i not in found],
            "events": events, "within_interval_plus_tick": sum(x <= interval + tick for x in latencies),
            "latencies_s": [round(x, 3) for x in latencies]}


def scheduled_checks(d: Deployment, since, until) -> int:
    with d.runtime.store.session() as s:
        return len(s.scalars(select(TaskRun.id).where(TaskRun.name == "schema.check", TaskRun.status == "done",
                                                      TaskRun.finished_at >= since,
                                                      TaskRun.finished_at < until)).all())


def busy_load(d: Deployment, admin, seconds: float, interval: float) -> dict:
    """The deployment left alone checking an unchanged schema for `seconds`."""
    from monitor_app.store.base import utcnow

    worker, beat = d.procs["worker"].pid, d.procs["beat"].pid
    cpu, start, status = {"worker": group_cpu(worker), "beat": group_cpu(beat)}, utcnow(), global_status(admin)
    time.sleep(seconds)
    moved, until = delta(status, global_status(admin)), utcnow()
    seconds = (until - start).total_seconds()
    checks = scheduled_checks(d, start, until)
    used = {"worker": group_cpu(worker) - cpu["worker"], "beat": group_cpu(beat) - cpu["beat"]}
    return {"seconds": round(seconds, 1), "status_delta": moved, "schema_checks": checks,
            "checks_expected": round(seconds / interval, 1),
            "worker_cpu_s": round(used["worker"], 2), "beat_cpu_s": round(used["beat"], 2),
            "worker_cpu_percent_of_a_core": round(used["worker"] * 100 / seconds, 2),
            # Every beat sweep (schema each tick, metrics, alerting, self-monitoring) runs in the worker too.
            "worker_cpu_per_check_ms_sweeps_included": round(used["worker"] * 1000 / checks, 1) if checks else None}


def check_cost(d: Deployment, admin, asset_id: int, rounds: int = 20) -> dict:
    """`run_check` in this process on an unchanged schema, the beat stopped: its CPU, wall time, Questions."""
    d.kill("beat", signal.SIGTERM)
    wait_for(lambda: not d.runtime.ledger.pending_assets("schema.check"), 30, what="the last scheduled check")
    run_check(d.runtime, asset_id)  # warm-up: this process's first check imports the driver, as a worker's did
    empty = delta(global_status(admin), global_status(admin))  # what reading the status costs
    cpu, wall, status = [], [], global_status(admin)
    for _ in range(rounds):
        c, w = time.process_time(), time.perf_counter()
        outcome = run_check(d.runtime, asset_id)
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
        assert outcome.get("skipped"), f"the schema moved during the cost measurement: {outcome}"
    moved = delta(status, global_status(admin))
    return {"rounds": rounds, "cpu_ms": {k: round(v, 2) for k, v in summary(cpu).items()},
            "wall_ms": {k: round(v, 2) for k, v in summary(wall).items()},
            "per_check": {k: round((moved[k] - empty[k]) / rounds, 2) for k in STATUS}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ddl", type=int, default=20)
    ap.add_argument("--interval", type=float, default=5.0, help="the asset's schema check_interval, seconds")
    ap.add_argument("--tick", type=float, default=1.0, help="DBMON_SWEEP_TICK, seconds (shipped 5)")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of each load window")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv if argv is not None else [])
    rng = random.Random(args.seed)
    began, load_before = time.monotonic(), [round(x, 2) for x in os.getloadavg()]
    admin = admin_connect()
    deployments: dict[str, Deployment] = {}
    modes: dict[str, dict] = {}
    load: dict = {}
    with tempfile.TemporaryDirectory(prefix="dbmon-bench-") as tmp:
        try:
            quiet_status, quiet_start = global_status(admin), time.monotonic()
            for mode in ("embedded", "distributed"):
                deployments[mode] = prepare(mode, Path(tmp) / mode, args.tick)
            time.sleep(max(0.0, quiet_start + args.idle - time.monotonic()))
            quiet = delta(quiet_status, global_status(admin))
            load["without_dbmon"] = {"seconds": round(time.monotonic() - quiet_start, 1), "status_delta": quiet,
                                     "other_connections": quiet["Connections"]}
            print(f"{time.monotonic() - began:.1f}s quiet window done", flush=True)
            for mode in list(deployments):
                d = deployments[mode]
                database, db = f"dbmon_bench_{os.urandom(5).hex()}", None
                try:
                    with admin.cursor() as cur:
                        cur.execute(f"CREATE DATABASE `{database}`")
                    db = admin_connect(database)
                    with db.cursor() as cur:
                        cur.execute("CREATE TABLE bench_t (id INT PRIMARY KEY)")
                    asset_id = watch(d, database, args.interval)
                    print(f"{time.monotonic() - began:.1f}s {mode} baselined", flush=True)
                    modes[mode] = ddl_latency(d, asset_id, db, args.ddl, args.interval, args.tick, rng)
                    last_ddl = modes[mode].pop("last_ddl_at")
                    print(f"{time.monotonic() - began:.1f}s", mode, {k: v for k, v in modes[mode].items()
                                                                       if k != "latencies_s"}, flush=True)
                    if mode == "embedded":
                        # Past the two seconds after a DDL in which every check snapshots: idle from here.
                        time.sleep(max(0.0, last_ddl + 2.5 - time.time()))
                        load["with_dbmon"] = busy_load(d, admin, args.idle, args.interval)
                        load["run_check_in_process"] = check_cost(d, admin, asset_id)
                        print(f"{time.monotonic() - began:.1f}s load measured", flush=True)
                finally:
                    deployments.pop(mode).close()
                    if db is not None:
                        db.close()
                    with admin.cursor() as cur:
                        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            for d in deployments.values():
                d.close()
            admin.close()
    if "with_dbmon" in load:
        busy, quiet = load["with_dbmon"], load["without_dbmon"]
        load["dbmon_per_minute"] = {k: round((busy["status_delta"][k] / busy["seconds"]
                                              - quiet["status_delta"][k] / quiet["seconds"]) * 60, 1) for k in STATUS}
    for result in modes.values():
        result["meets_target"] = result["detected"] == result["ddl"] == result["within_interval_plus_tick"]
    path = write("mysql_detection_latency", {
        "what": "MariaDB ALTER TABLE ADD COLUMN returned -> schema.changed event detected_at, scheduled check "
                "only, through `dbmon worker` + `dbmon beat` processes",
        "server": "MariaDB 10.11 at 127.0.0.1:3306 (shared)", "ddl": args.ddl, "check_interval_s": args.interval,
        "sweep_tick_s": args.tick, "spacing_s": [3, 8], "seed": args.seed,
        "target": "every DDL stored within check_interval + sweep tick",
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "runtime_s": round(time.monotonic() - began, 1), "modes": modes, "load": load})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
