"""Events lost across watcher restarts during container churn. Must be 0.

A churn thread creates, starts, kills and removes database containers continuously while
the real `dbmon watcher` process is stopped (SIGTERM, or SIGKILL: no chance to flush) and
restarted several times, with a worker processing tasks. Afterwards every container event
the engine reports for the churned containers must be in the store exactly once.

    python -m bench.containers_watcher_restart [--restarts 5] [--runs 3] [--modes distributed,embedded]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402
from sqlalchemy import select  # noqa: E402

from monitor_app.containers.lifecycle import LIFECYCLE_ACTIONS, split_action  # noqa: E402
from monitor_app.store.models import Event, TaskRun  # noqa: E402
from tests.containers.conftest import IMAGES, cleanup, make_image  # noqa: E402

BENCH_LABEL = "containers-bench"  # its own label: a test session cleaning up leaves these alone
from tests.containers.deployment import Deployment  # noqa: E402

from bench.stats import write  # noqa: E402
STORED = {"create", "start", "die", "stop", "kill", "restart", "oom", "health_status", "destroy"}


def churn(client, stop: threading.Event, tag: str, created: list[str]) -> None:
    i = 0
    while not stop.is_set():
        name = f"dbmt-churn-{tag}-{i}"
        c = client.api.create_container("dbmct-bench/postgres:16", name=name, labels={"dbmon-test": BENCH_LABEL},
                                        environment={"POSTGRES_PASSWORD": "x"},
                                        host_config=client.api.create_host_config(network_mode="none"))
        created.append(c["Id"])
        client.api.start(c["Id"])
        time.sleep(0.1)
        client.api.kill(c["Id"])
        if i % 2:
            client.api.remove_container(c["Id"])
        i += 1
        time.sleep(0.1)


def engine_events(client, ids: set[str], since: float, until: float) -> set[tuple[str, int, str]]:
    out = set()
    for ev in client.events(since=since, until=until, decode=True, filters={"type": "container",
                                                                            "label": f"dbmon-test={BENCH_LABEL}"}):
        base, _ = split_action(ev["Action"])
        if ev["id"] in ids and base in STORED and base in LIFECYCLE_ACTIONS:
            out.add((ev["id"][:12], int(ev["timeNano"]), f"container.{base}"))
    return out


def stored_events(d: Deployment) -> list[tuple[str, int, str]]:
    with d.store.session() as s:
        rows = s.execute(select(Event.dedupe_key, Event.type).where(Event.type.like("container.%"))).all()
    out = []
    for key, type_ in rows:
        parts = (key or "").split(":")
        if len(parts) == 4 and parts[0] == "docker" and parts[2].isdigit():
            out.append((parts[1], int(parts[2]), type_))
    return out


def one_run(client, restarts: int, tag: str, hard: bool, mode: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="dbmon-bench-") as tmp:
        d = Deployment(Path(os.environ.get("DBMON_BENCH_KEEP_DIR") or tmp), mode=mode)
        try:
            d.start_worker()
            d.start_beat()  # redelivers any task message the broker lost
            d.start_watcher()
            since = time.time()
            stop, created = threading.Event(), []
            t = threading.Thread(target=churn, args=(client, stop, tag, created), daemon=True)
            t.start()
            for _ in range(restarts):
                time.sleep(1.5)
                d.stop("watcher", signal.SIGKILL if hard else signal.SIGTERM)
                time.sleep(1.0)  # containers keep changing while nobody watches
                d.start_watcher()
            time.sleep(1.5)
            stop.set()
            t.join(30)
            until = time.time() + 0.5
            time.sleep(0.6)
            expected = engine_events(client, set(created), since, until)
            deadline = time.monotonic() + 60
            while True:
                stored = stored_events(d)
                if expected <= set(stored) or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            lost = expected - set(stored)
            ours = [k for k in stored if k in expected]
            with d.store.session() as s:
                troubled = [f"{r.name} {r.status} {r.kwargs.get('action')} {r.error}" for r in s.scalars(
                    select(TaskRun).where(TaskRun.status != "done"))]
            return {"engine_events": len(expected), "stored": len(ours), "lost": len(lost),
                    "duplicates": len(ours) - len(set(ours)), "containers": len(created),
                    "watcher_restarts": restarts, "stop_signal": "SIGKILL" if hard else "SIGTERM",
                    "lost_examples": sorted(lost)[:5], "unfinished_tasks": troubled[:10]}
        finally:
            d.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="distributed,embedded")
    args = ap.parse_args(argv if argv is not None else [])
    client = docker.from_env(timeout=60)
    make_image(client, "dbmct-bench/postgres:16", label_value=BENCH_LABEL, **IMAGES["dbmct/postgres:16"])
    modes = {}
    try:
        for mode in args.modes.split(","):
            runs = []
            for r in range(args.runs):
                # Alternate a graceful stop and a SIGKILL (no chance to flush anything).
                runs.append(one_run(client, args.restarts, f"{mode}{r}", hard=bool(r % 2), mode=mode))
                print(f"{mode} run {r + 1}: {runs[-1]}", flush=True)
            modes[mode] = {"runs": runs, "engine_events": sum(x["engine_events"] for x in runs),
                           "lost": sum(x["lost"] for x in runs), "duplicates": sum(x["duplicates"] for x in runs)}
            modes[mode]["meets_target"] = modes[mode]["lost"] == 0 and modes[mode]["duplicates"] == 0
    finally:
        cleanup(client, BENCH_LABEL)
    path = write("containers_watcher_restart", {
        "what": "container events lost across watcher restarts during churn (engine's events vs stored events)",
        "target_lost": 0, "modes": modes})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
