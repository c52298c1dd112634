"""What `dbmon up` costs on a single machine, and how fast it stops.

For each mode (embedded: SQLite + filesystem broker, what `make run` starts; distributed:
PostgreSQL + Redis) and RUNS rounds: start `dbmon up` with a PostgreSQL and a SQLite asset,
wait until the API and every heartbeat answer, then sample the proportional set size (PSS) of
the whole process tree while idle and during a burst of BURST scans. Then queue another burst
and send SIGTERM at once: the time to exit is the shutdown time with tasks in flight, and a
second `dbmon up` must finish every run of that burst (nothing lost).
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from bench.stats import write
from tests.harness import Deployment, wait_for
from tests.services import free_port

RUNS = 3
BURST = 40
CONFIG = ("assets:\n  - name: pg\n    engine: postgresql\n    host: 127.0.0.1\n    database: postgres\n"
          "    user: postgres\n    insecure: true\n  - name: lite\n    engine: sqlite\n    path: {path}\n")


def tree_pss_mib(pid: int) -> tuple[float, int]:
    root = psutil.Process(pid)
    total, count = 0, 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_full_info().pss
            count += 1
        except psutil.Error:
            pass
    return total / 2**20, count


def _healthy(d: Deployment, port: int) -> bool:
    try:
        if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code != 200:
            return False
    except requests.RequestException:
        return False
    return all(d.cli("health", part).returncode == 0 for part in ("worker", "beat", "watcher"))


def _burst(d: Deployment) -> list[str]:
    from sqlalchemy import select

    from monitor_app.store.models import Asset

    with d.runtime.store.session() as s:
        # Only the two declared here: discovery may also register containers others run on the engine.
        ids = list(s.scalars(select(Asset.id).where(Asset.kind == "database", Asset.source == "config")))
    return [d.runtime.dispatch("assets.check_reachability", {"asset_id": ids[i % len(ids)]}, requested_by="bench")
            if i % 4 else d.runtime.dispatch("metrics.host_sample", {}, requested_by="bench") for i in range(BURST)]


def one_round(mode: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"dbmon-footprint-{mode}-"))
    d = Deployment(mode, tmp)
    try:
        import sqlite3

        sqlite3.connect(tmp / "app.db").execute("create table if not exists t (x)").connection.close()
        d.write_config(CONFIG.format(path=tmp / "app.db"))
        port = free_port()
        d.env["DBMON_API_PORT"] = str(port)
        up = d.start("up", "up")
        wait_for(lambda: _healthy(d, port), 120, interval=0.5, what="dbmon up healthy")
        time.sleep(5)  # let start-up work (first probes, discovery) settle
        idle = [tree_pss_mib(up.pid) for _ in range(5) if time.sleep(1) is None]
        runs = _burst(d)
        peak = max(tree_pss_mib(up.pid)[0] for _ in range(10) if time.sleep(0.3) is None)
        for run in runs:
            d.wait_run(run, timeout=120)

        in_flight = _burst(d)
        started = time.monotonic()
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=60)
        shutdown_s = time.monotonic() - started
        d.procs.pop("up", None)
        unfinished = [r for r in in_flight if d.runtime.ledger.get(r).status not in ("done", "failed")]
        again = d.start("up-again", "up")
        finished = [d.wait_run(r, timeout=180).status for r in in_flight]
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=60)
        d.procs.pop("up-again", None)
        return {"processes": idle[-1][1], "idle_pss_mib": statistics.median(p for p, _ in idle),
                "burst_peak_pss_mib": peak, "shutdown_s": shutdown_s, "exit_code": code,
                "in_flight_at_sigterm": len(unfinished), "finished_after_restart": finished.count("done"),
                "lost": len(in_flight) - finished.count("done")}
    finally:
        d.close()


def main() -> None:
    modes = sys.argv[1:] or ["embedded", "distributed"]
    results = {}
    for mode in modes:
        rounds = [one_round(mode) for _ in range(RUNS)]
        results[mode] = {"rounds": rounds, **{key: statistics.median(r[key] for r in rounds) for key in (
            "processes", "idle_pss_mib", "burst_peak_pss_mib", "shutdown_s")}, "lost": sum(r["lost"] for r in rounds)}
    path = write("embedded_footprint", {"burst": BURST, "runs": RUNS, "modes": results})
    for mode, r in results.items():
        print(f"{mode:12s} {r['processes']:.0f} processes, PSS idle {r['idle_pss_mib']:.0f} MiB, "
              f"burst peak {r['burst_peak_pss_mib']:.0f} MiB, SIGTERM -> exit {r['shutdown_s']:.1f} s "
              f"with a burst in flight, lost {r['lost']}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
