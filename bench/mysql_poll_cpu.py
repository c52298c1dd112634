"""CPU per MySQL/MariaDB poll: the dbmon process and the monitored server.

    python -m bench.mysql_poll_cpu [--rounds 5] [--polls 40]

A private MariaDB (Debian's mariadbd, performance_schema off as it is by default, on a free
port) is the asset; a `Runtime` over a dbmon store (SQLite, then PostgreSQL) polls it through
`run_mysql_poll`, the body a `metrics.mysql` task wraps, on its kept connection. Per round of
`--polls` polls: the dbmon process's CPU (`time.process_time`), the part of it spent reading the
server (`read_mysql` alone on the kept connection), and the server's CPU (utime + stime of the
whole mariadbd process from /proc; ticks of 10 ms, hence whole rounds) less what it spent in an
idle stretch as long as the round (its background threads). A few polls before the first round
warm the connection and the series ids. Medians over rounds, per poll, in milliseconds.

Writes bench/results/mysql_poll_cpu.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import write  # noqa: E402
from monitor_app.config.settings import load_settings  # noqa: E402
from monitor_app.metrics.mysql_tier import read_mysql, run_mysql_poll  # noqa: E402
from monitor_app.platform.runtime import Runtime  # noqa: E402
from monitor_app.store import Store  # noqa: E402
from monitor_app.store.migrate import upgrade  # noqa: E402
from tests.metrics.mysql_servers import PrivateMariaDB, add_mysql_asset, asset_connection  # noqa: E402
from tests.services import create_pg_database, drop_pg_database  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def runtime(store_url: str, data_dir: Path) -> Runtime:
    upgrade(store_url)
    config = data_dir / "dbmon.yaml"
    config.write_text("{}\n")
    settings = load_settings(data_dir=data_dir, database_url=store_url, config_file=config, secret_key="bench")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = Store(store_url)
    return rt


def measure(rt: Runtime, asset_id: int, server_pid: int, rounds: int, polls: int) -> dict:
    for _ in range(3):
        run_mysql_poll(rt, asset_id)
    kept = rt.mysql_sessions
    assert kept.opened == 1, "the poll did not keep its connection"
    conn = kept._kept[kept.kept_servers()[0]].conn
    per_poll: dict[str, list[float]] = {"dbmon_ms": [], "dbmon_read_ms": [], "server_ms": [], "wall_ms": []}
    samples = 0
    for _ in range(rounds):
        cpu, server, wall = time.process_time(), process_cpu(server_pid), time.perf_counter()
        for _ in range(polls):
            samples = run_mysql_poll(rt, asset_id)["samples"]
        elapsed = time.perf_counter() - wall
        server_busy = process_cpu(server_pid) - server
        per_poll["dbmon_ms"].append((time.process_time() - cpu) * 1000 / polls)
        per_poll["wall_ms"].append(elapsed * 1000 / polls)
        idle = process_cpu(server_pid)
        time.sleep(elapsed)  # the server's background threads over as long, to subtract
        per_poll["server_ms"].append(max(0.0, server_busy - (process_cpu(server_pid) - idle)) * 1000 / polls)
        cpu = time.process_time()
        for _ in range(polls):
            read_mysql(conn, None, 50)
        per_poll["dbmon_read_ms"].append((time.process_time() - cpu) * 1000 / polls)
    assert kept.opened == 1
    summary: dict = {k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2),
                         "max": round(max(v), 2)} for k, v in per_poll.items()}
    summary["total_ms_median"] = round(summary["dbmon_ms"]["median"] + summary["server_ms"]["median"], 2)
    summary["samples_per_poll"] = samples
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--polls", type=int, default=40)
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    server = PrivateMariaDB(performance_schema=False)
    results: dict = {"rounds": args.rounds, "polls_per_round": args.polls}
    try:
        server.start()
        assert server.proc is not None
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            results["server"] = cur.fetchone()[0]
        connection = asset_connection(server.port, "root")
        with tempfile.TemporaryDirectory() as tmp:
            rt = runtime(f"sqlite:///{tmp}/store.sqlite3", Path(tmp))
            try:
                results["sqlite_store"] = measure(rt, add_mysql_asset(rt, connection), server.proc.pid, args.rounds,
                                                  args.polls)
            finally:
                rt.close()
        store_name, store_url = create_pg_database("dbmon_bench_store")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                rt = runtime(store_url.replace("postgresql://", "postgresql+psycopg2://", 1), Path(tmp))
                try:
                    results["postgresql_store"] = measure(rt, add_mysql_asset(rt, connection), server.proc.pid,
                                                          args.rounds, args.polls)
                finally:
                    rt.close()
        finally:
            drop_pg_database(store_name)
    finally:
        server.stop()
    print(write("mysql_poll_cpu", results))
    for store, r in results.items():
        if isinstance(r, dict):
            print(store, {k: v["median"] if isinstance(v, dict) else v for k, v in r.items()})


if __name__ == "__main__":
    main()
