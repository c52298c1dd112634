"""Snapshot + diff of a 200-table PostgreSQL schema (about 2,500 objects). Target: < 1 s.

    python bench/schema_snapshot_diff.py [--runs 7]

Writes bench/results/schema_snapshot_diff.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor_app.schema.diff import diff  # noqa: E402
from monitor_app.schema.postgres_snapshot import connect, take_snapshot  # noqa: E402
from tests.services import create_pg_database, drop_pg_database  # noqa: E402

TABLES = 200


def build(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA app")
        for i in range(TABLES):
            ref = f", parent_id integer REFERENCES app.t{i - 1} (id)" if i else ""
            cur.execute(f"CREATE TABLE app.t{i} (id integer PRIMARY KEY, name varchar(80) NOT NULL, "
                        f"created_at timestamptz DEFAULT now(), amount numeric(12,2) CHECK (amount >= 0), "
                        f"note text{ref})")
            cur.execute(f"CREATE INDEX t{i}_name ON app.t{i} (name)")
            cur.execute(f"COMMENT ON TABLE app.t{i} IS 'table {i}'")
            if i % 10 == 0:
                cur.execute(f"CREATE VIEW app.v{i} AS SELECT id, name FROM app.t{i}")
                cur.execute(f"CREATE FUNCTION app.f{i}(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x + {i}'")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    name, url = create_pg_database("dbmon_bench")
    try:
        conn = connect(url)
        conn.autocommit = True
        build(conn)
        baseline = take_snapshot(conn)
        with conn.cursor() as cur:
            cur.execute("ALTER TABLE app.t7 ADD COLUMN extra integer")
            cur.execute("ALTER TABLE app.t8 RENAME TO t8_renamed")
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
        assert len(changes) == 2, changes
        conn.close()
    finally:
        drop_pg_database(name)
    result = {
        "benchmark": "schema snapshot + diff, 200 tables",
        "tables": TABLES, "objects": len(current["objects"]), "runs": args.runs,
        "snapshot_median_s": round(statistics.median(snapshot_s), 4),
        "diff_median_s": round(statistics.median(diff_s), 4),
        "total_median_s": round(statistics.median(total_s), 4),
        "total_max_s": round(max(total_s), 4),
        "target_s": 1.0,
    }
    out = Path(__file__).resolve().parent / "results" / "schema_snapshot_diff.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
