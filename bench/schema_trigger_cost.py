"""What the event trigger costs a migration: a DDL-only migration with and without it.

A generated 452-statement migration (tables, columns, indexes, views, functions, comments,
drops, renames) runs in a fresh schema, once as one transaction and once as autocommitted
statements, alternately with the trigger installed and without it (interleaved pairs, the
order flipped every other pair), with nobody listening. Reported per mode: median wall time
and median CPU time of the migration's backend (`/proc/<pid>/schedstat`, less disturbed by
other work on a shared machine), and the overhead as the median of the per-pair ratios, with
their quartiles and the machine's load average before and after, to say how noisy it was.

    python bench/schema_trigger_cost.py [--pairs 9] [--url postgresql://...]

Without --url it runs on a private cluster (initdb, as root via runuser; stopped at the end).
Writes bench/results/schema_trigger_cost.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from bench.stats import write  # noqa: E402
from monitor_app.schema import event_trigger  # noqa: E402

MODES = ("transaction", "autocommit")


def migration(schema: str) -> list[str]:
    """452 DDL statements, no data."""
    s, tables = schema, range(60)
    out = [f"CREATE TABLE {s}.t{i} (id bigint PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now())"
           for i in tables]
    out += [f"ALTER TABLE {s}.t{i} ADD COLUMN {c}{i} {t}" for i in tables for c, t in (("a", "integer"),
                                                                                     ("b", "text DEFAULT 'x'"))]
    out += [f"CREATE INDEX t{i}_name_idx ON {s}.t{i} (name)" for i in tables]
    out += [f"CREATE INDEX t{i}_a_idx ON {s}.t{i} (a{i}) WHERE a{i} IS NOT NULL" for i in range(40)]
    out += [f"CREATE VIEW {s}.v{i} AS SELECT id, name FROM {s}.t{i} WHERE a{i} > 0" for i in range(40)]
    out += [f"CREATE FUNCTION {s}.f{i}(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT x + {i}'"
            for i in range(40)]
    out += [f"COMMENT ON TABLE {s}.t{i} IS 'table {i}'" for i in range(30)]
    out += [f"ALTER TABLE {s}.t{i} ALTER COLUMN b{i} SET DEFAULT 'y'" for i in range(20)]
    out += [f"DROP VIEW {s}.v{i}" for i in range(10)]
    out += [f"DROP INDEX {s}.t{i}_a_idx" for i in range(10)]
    out += [f"DROP FUNCTION {s}.f{i}(integer)" for i in range(10)]
    out += [f"DROP TABLE {s}.t{i}" for i in range(50, 60)]
    out += [f"ALTER TABLE {s}.t{i} RENAME COLUMN a{i} TO c{i}" for i in (20, 21)]
    return out


def cpu_seconds(pid: int) -> float:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


class Runner:
    def __init__(self, dsn: str, local: bool):
        self.dsn, self.local, self.runs = dsn, local, 0

    def once(self, mode: str) -> tuple[float, float | None]:
        self.runs += 1
        schema = f"bench_trigger_{self.runs}"
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                cur.execute(f"CREATE SCHEMA {schema}")
                cur.execute("SELECT pg_backend_pid()")
                pid = cur.fetchone()[0]
                statements = migration(schema)
                conn.autocommit = mode == "autocommit"
                cpu0 = cpu_seconds(pid) if self.local else None
                started = time.perf_counter()
                for statement in statements:
                    cur.execute(statement)
                conn.commit()
                wall = time.perf_counter() - started
                cpu = cpu_seconds(pid) - cpu0 if cpu0 is not None else None
                conn.autocommit = True
                cur.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            conn.close()
        return wall, cpu

    def set_trigger(self, on: bool) -> None:
        if on:
            event_trigger.install(self.dsn)
        else:
            event_trigger.uninstall(self.dsn)


def ratios(with_: list[float], without: list[float]) -> list[float]:
    return [100 * (w / wo - 1) for w, wo in zip(with_, without, strict=True)]


def overhead(with_: list[float], without: list[float]) -> float:
    return round(statistics.median(ratios(with_, without)), 2)


def quartiles(with_: list[float], without: list[float]) -> list[float]:
    q1, _, q3 = statistics.quantiles(ratios(with_, without), n=4)
    return [round(q1, 1), round(q3, 1)]


def measure(runner: Runner, mode: str, pairs: int) -> dict:
    samples: dict[bool, dict[str, list]] = {on: {"wall": [], "cpu": []} for on in (True, False)}
    load_before = os.getloadavg()[0]
    runner.set_trigger(False)
    runner.once(mode)  # warm-up
    for pair in range(pairs):
        for on in ((False, True) if pair % 2 == 0 else (True, False)):
            runner.set_trigger(on)
            wall, cpu = runner.once(mode)
            samples[on]["wall"].append(wall)
            samples[on]["cpu"].append(cpu)
    runner.set_trigger(False)
    result: dict = {"statements": len(migration("s")), "pairs": pairs,
                    "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
    for kind in ("wall", "cpu"):
        with_, without = samples[True][kind], samples[False][kind]
        if None in with_:
            continue
        result[kind] = {"without_ms": round(1000 * statistics.median(without), 1),
                        "with_ms": round(1000 * statistics.median(with_), 1),
                        "overhead_pct": overhead(with_, without),
                        "overhead_quartiles_pct": quartiles(with_, without),
                        "per_statement_us": round(1e6 * (statistics.median(with_) - statistics.median(without))
                                                  / len(migration("s")), 1),
                        "without_samples_ms": [round(1000 * v, 1) for v in without],
                        "with_samples_ms": [round(1000 * v, 1) for v in with_]}
    print(mode, result["load_average"], {k: {kk: vv for kk, vv in v.items() if not kk.endswith("samples_ms")}
                                         for k, v in result.items() if isinstance(v, dict)}, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--url", help="a database to run in (default: a private cluster)")
    parser.add_argument("--name", default="schema_trigger_cost", help="results file name")
    args = parser.parse_args()
    cluster = None
    if args.url:
        runner = Runner(args.url, local=False)
    else:
        from tests.posture.clusters import PrivateCluster

        cluster = PrivateCluster()
        cluster.start(listen="")
        runner = Runner(cluster.dsn(), local=True)
    try:
        results = {mode: measure(runner, mode, args.pairs) for mode in MODES}
    finally:
        if cluster is not None:
            cluster.stop()
    print(write(args.name, {"server": "private cluster" if cluster else "given --url", "modes": results}))


if __name__ == "__main__":
    main()
