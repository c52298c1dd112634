"""CPU per PostgreSQL fast-tier poll: the dbmon process and the monitored server's backend,
side by side with `prometheus-postgres-exporter` (Debian package) scraping the same database.

    python -m bench.pg_fast_poll_cpu [--rounds 5] [--polls 40]

One throwaway database on the shared server is the asset; a `Runtime` over a dbmon store (SQLite,
then PostgreSQL) polls it through `run_poll`, the body of the `metrics.pg_fast` task, on its kept
connection. Per round of `--polls` polls: the dbmon process's CPU (`time.process_time`, every
thread), the part of it spent reading the server (`read_fast` alone), and the CPU of the backend
serving the kept connection (utime + stime from /proc/<pid>/stat, the pid from pg_stat_activity;
ticks of 10 ms, hence whole rounds). A few polls before the first round warm the connection and
the series ids. Medians over rounds, per poll, in milliseconds. Target ≤ 10 ms.

The exporter (its default collectors and settings metrics, as packaged) runs as a process of its
own on a free port; each of its rounds, interleaved with dbmon's on the SQLite store, is
`--polls` scrapes of /metrics: its process CPU plus the CPU of every backend it holds on the
database. Target: dbmon at least 2x cheaper.

Writes bench/results/pg_fast_poll_cpu.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import urllib.request
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import write  # noqa: E402
from monitor_app.config.settings import load_settings  # noqa: E402
from monitor_app.metrics.pg_fast import run_poll  # noqa: E402
from monitor_app.metrics.pg_fast_queries import read_fast  # noqa: E402
from monitor_app.platform.runtime import Runtime  # noqa: E402
from monitor_app.store import Store  # noqa: E402
from monitor_app.store.migrate import upgrade  # noqa: E402
from monitor_app.store.models import Asset  # noqa: E402
from tests.harness import wait_for  # noqa: E402
from tests.services import create_pg_database, drop_pg_database, free_port  # noqa: E402

EXPORTER = shutil.which("prometheus-postgres-exporter")

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def backend_pid(url: str) -> int:
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'dbmon-metrics' "
                    "AND datname = current_database()")
        [(pid,)] = cur.fetchall()
    conn.close()
    return pid


def runtime(store_url: str, data_dir: Path) -> Runtime:
    upgrade(store_url)
    config = data_dir / "dbmon.yaml"
    config.write_text("{}\n")
    settings = load_settings(data_dir=data_dir, database_url=store_url, config_file=config, secret_key="bench")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = Store(store_url)
    return rt


def add_target(rt: Runtime, url: str) -> int:
    from urllib.parse import urlparse

    u = urlparse(url)
    with rt.store.session() as s:
        a = Asset(kind="database", engine="postgresql", name="bench-target", source="config", external_id="bench",
                  labels={}, details={}, status="up",
                  connection={"host": u.hostname, "port": u.port or 5432, "database": u.path.lstrip("/"),
                              "user": u.username or "postgres", "sslmode": "disable", "insecure": True})
        s.add(a)
        s.flush()
        return a.id


def other_backends(url: str) -> list[int]:
    """Backends on the database that are neither dbmon's nor this query's: the exporter's."""
    conn = psycopg2.connect(url, application_name="dbmon-bench")
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND coalesce(application_name, '') NOT LIKE 'dbmon%' AND pid <> pg_backend_pid()")
        pids = [pid for (pid,) in cur.fetchall()]
    conn.close()
    return pids


class Exporter:
    def __init__(self, url: str):
        self.port = free_port()
        env = {**os.environ, "DATA_SOURCE_NAME": url + "?sslmode=disable"}
        self.proc = subprocess.Popen([EXPORTER, f"--web.listen-address=127.0.0.1:{self.port}"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self._up(), 20, 0.1, what="the exporter listening")

    def _up(self) -> bool:
        try:
            self.scrape()
            return True
        except OSError:
            return False

    def scrape(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:  # nosec B310
            return len(response.read().splitlines())

    def cpu(self, backends: list[int]) -> float:
        return backend_cpu(self.proc.pid) + sum(backend_cpu(pid) for pid in backends)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def exporter_round(exporter: Exporter, url: str, polls: int) -> dict:
    exporter.scrape()
    backends = other_backends(url)
    cpu, wall = exporter.cpu(backends), time.perf_counter()
    lines = 0
    for _ in range(polls):
        lines = exporter.scrape()
    return {"exporter_ms": (exporter.cpu(backends) - cpu) * 1000 / polls,
            "exporter_wall_ms": (time.perf_counter() - wall) * 1000 / polls, "lines": lines,
            "backends": len(backends)}


def measure(rt: Runtime, asset_id: int, url: str, rounds: int, polls: int, exporter: Exporter | None = None) -> dict:
    for _ in range(3):
        run_poll(rt, asset_id)
    pid = backend_pid(url)
    assert rt.pg_sessions.opened == 1, "the poll did not keep its connection"
    per_poll: dict[str, list[float]] = {"dbmon_ms": [], "dbmon_read_ms": [], "backend_ms": [], "wall_ms": []}
    kept = rt.pg_sessions._kept[rt.pg_sessions.kept_servers()[0]].conn
    for _ in range(rounds):
        cpu, b, wall = time.process_time(), backend_cpu(pid), time.perf_counter()
        for _ in range(polls):
            run_poll(rt, asset_id)
        per_poll["dbmon_ms"].append((time.process_time() - cpu) * 1000 / polls)
        per_poll["backend_ms"].append((backend_cpu(pid) - b) * 1000 / polls)
        per_poll["wall_ms"].append((time.perf_counter() - wall) * 1000 / polls)
        cpu = time.process_time()
        for _ in range(polls):
            read_fast(kept)
        per_poll["dbmon_read_ms"].append((time.process_time() - cpu) * 1000 / polls)
        if exporter is not None:
            scraped = exporter_round(exporter, url, polls)
            per_poll.setdefault("exporter_ms", []).append(scraped["exporter_ms"])
            per_poll.setdefault("exporter_wall_ms", []).append(scraped["exporter_wall_ms"])
            extra = {"exporter_lines": scraped["lines"], "exporter_backends": scraped["backends"]}
    assert backend_pid(url) == pid and rt.pg_sessions.opened == 1
    summary: dict = {k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2),
                         "max": round(max(v), 2)} for k, v in per_poll.items()}
    summary["total_ms_median"] = round(summary["dbmon_ms"]["median"] + summary["backend_ms"]["median"], 2)
    if exporter is not None:
        summary.update(extra)
        summary["exporter_over_dbmon"] = round(summary["exporter_ms"]["median"] / summary["total_ms_median"], 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--polls", type=int, default=40)
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    target, target_url = create_pg_database("dbmon_bench_target")
    results: dict = {"rounds": args.rounds, "polls_per_round": args.polls}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rt = runtime(f"sqlite:///{tmp}/store.sqlite3", Path(tmp))
            exporter = Exporter(target_url) if EXPORTER else None
            try:
                results["sqlite_store"] = measure(rt, add_target(rt, target_url), target_url, args.rounds, args.polls,
                                                  exporter)
            finally:
                rt.close()
                if exporter is not None:
                    exporter.stop()
        store_name, store_url = create_pg_database("dbmon_bench_store")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                rt = runtime(store_url.replace("postgresql://", "postgresql+psycopg2://", 1), Path(tmp))
                try:
                    results["postgresql_store"] = measure(rt, add_target(rt, target_url), target_url, args.rounds,
                                                          args.polls)
                finally:
                    rt.close()
        finally:
            drop_pg_database(store_name)
    finally:
        drop_pg_database(target)
    print(write("pg_fast_poll_cpu", results))
    for store, r in results.items():
        if isinstance(r, dict):
            print(store, {k: v["median"] if isinstance(v, dict) else v for k, v in r.items()})


if __name__ == "__main__":
    main()
