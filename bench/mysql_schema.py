"""Snapshot + diff of a 200-table MySQL/MariaDB schema, and the pre-check's latency.

The schema (tests/schema/mysql_scratch.build_schema): 200 tables with a key, a foreign key to the
previous table, an index, a CHECK and a comment; a view, a function and a trigger every tenth
table. After a baseline snapshot one column is added and one table renamed; each run takes a
snapshot through an open bounded session and diffs it against the baseline (the two changes are
checked). The pre-check (`mysql_precheck.mysql_marker`, one statement) is timed on the same
session, the server's table cache warm as a periodic pre-check finds it; then again with one
MyISAM table added, which on MariaDB makes it hash every table's columns, indexes, constraints and
partitions too. Targets: snapshot + diff under 1 s, pre-check well under 10 ms.

    python bench/mysql_schema.py [--runs 7] [--precheck-runs 50] [--tables 200]

Server: DBMON_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/). Writes
bench/results/mysql_schema.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DBMON_TEST_REQUIRE_SERVICES", "1")  # no server: fail loudly, never "skip"

from bench.stats import summary, write  # noqa: E402
from monitor_app.schema.diff import diff  # noqa: E402
from monitor_app.schema.mysql_connection import connect  # noqa: E402
from monitor_app.schema.mysql_precheck import mysql_marker  # noqa: E402
from monitor_app.schema.mysql_snapshot import server_version, take_snapshot  # noqa: E402
from tests.schema.mysql_scratch import MysqlScratch, build_schema  # noqa: E402


def _timed(fn, runs: int) -> tuple[list[float], object]:
    timings, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - started)
    return timings, result


def _ms(stats: dict) -> dict:
    return {k: (round(v * 1000, 2) if k != "n" else v) for k, v in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--precheck-runs", type=int, default=50)
    parser.add_argument("--tables", type=int, default=200)
    args = parser.parse_args()
    scratch = MysqlScratch("dbmon_bench")
    try:
        started = time.perf_counter()
        build_schema(scratch.run, args.tables)
        build_s = time.perf_counter() - started
        conn = connect(scratch.dsn)
        try:
            version = server_version(conn)
            baseline = take_snapshot(conn)
            scratch.run("ALTER TABLE t7 ADD COLUMN extra int", "RENAME TABLE t8 TO t8_renamed")
            snapshot_s, diff_s, total_s = [], [], []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                current = take_snapshot(conn)
                t1 = time.perf_counter()
                changes = diff(baseline, current)
                t2 = time.perf_counter()
                snapshot_s.append(t1 - t0)
                diff_s.append(t2 - t1)
                total_s.append(t2 - t0)
            found = sorted((c["action"], c["object"].split(".", 1)[1]) for c in changes)
            assert found == [("added", "t7.extra"), ("modified", "t8_renamed")], changes
            mysql_marker(conn)  # warm, as a periodic pre-check finds the server
            precheck_s, _ = _timed(lambda: mysql_marker(conn), args.precheck_runs)
            # One table of another engine makes MariaDB's pre-check hash every table's structure.
            scratch.run("CREATE TABLE other_engine (id int PRIMARY KEY) ENGINE=MyISAM")
            mysql_marker(conn)
            mixed_s, _ = _timed(lambda: mysql_marker(conn), args.precheck_runs)
        finally:
            conn.close()
    finally:
        scratch.drop()
    result = {
        "server": version, "tables": args.tables, "objects": len(current["objects"]), "runs": args.runs,
        "build_s": round(build_s, 1),
        "snapshot_ms": _ms(summary(snapshot_s)), "diff_ms": _ms(summary(diff_s)),
        "snapshot_plus_diff_ms": _ms(summary(total_s)), "precheck_ms": _ms(summary(precheck_s)),
        "precheck_with_a_myisam_table_ms": _ms(summary(mixed_s)),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "targets": {"snapshot_plus_diff_ms": 1000, "precheck_ms": 10},
    }
    path = write("mysql_schema", result)
    print(json.dumps(json.loads(path.read_text()), indent=2))


if __name__ == "__main__":
    main()
