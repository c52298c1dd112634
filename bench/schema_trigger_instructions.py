"""The event trigger's cost in instructions: the same migration as `schema_trigger_cost`, counted.

On a shared machine the CPU time of a backend moves by tens of percent from run to run, far
more than the few percent being measured. Instruction counts do not: a private cluster runs
under valgrind's callgrind (every backend counted from its start to its exit), and each run
of the 452-statement migration is one new session whose total is read from its output file.
Compared per mode: no trigger; the current install with an empty trigger function (what any
`plpgsql` trigger of this shape costs before doing anything); the release with two triggers (on
`ddl_command_end` and `sql_drop`); the last signed release (a deciding function and a SECURITY
DEFINER sender signing with a key table); the release with a per-session notification window
for autocommitted statements; and the current install, which notifies every statement.

The two releases with a window ran it on the clock: under callgrind the migration runs 15 to 20
times slower, so it would span that many times as many 0.25 s windows and notify every few
statements instead of a handful of times. Their window is multiplied by the measured slowdown
(the migration's wall time under callgrind over its wall time on a plain private cluster,
medians), so they notify as often per statement as natively. Catalogues are vacuumed after every
run, and the kinds alternate, so no kind runs on a more bloated catalogue than another.

    python bench/schema_trigger_instructions.py [--runs 1]

Needs valgrind and root (the cluster runs as postgres via runuser); about 30 s per run.
Writes bench/results/schema_trigger_instructions.json.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from bench.schema_trigger_cost import MODES, migration  # noqa: E402
from bench.stats import write  # noqa: E402
from monitor_app.schema import event_trigger  # noqa: E402
from tests.posture.clusters import PG_BIN  # noqa: E402
from tests.services import free_port  # noqa: E402

KINDS = ("none", "empty", "release", "signed_scaled", "window_scaled", "current")
TOTAL = re.compile(r"^(?:summary|totals): (\d+)", re.M)
# The body of the release with two triggers (ddl_command_end and sql_drop), for comparison.
RELEASES = (Path(__file__).resolve().parent.parent / "tests/schema/test_trigger_tampering.py").read_text()
RELEASE_BODY = RELEASES.split('PREVIOUS_TWO_TRIGGER_BODY = """', 1)[1].split('"""', 1)[0]
# The last signed release: its deciding function and its sender.
SIGNED_BODY = RELEASES.split('PREVIOUS_SIGNED_FUNCTION_BODY = """', 1)[1].split('"""', 1)[0]
SIGNED_SENDER_BODY = RELEASES.split('PREVIOUS_SIGNED_SENDER_BODY = """', 1)[1].split('"""', 1)[0]
# The release with a per-session window for autocommitted statements.
WINDOW_BODY = RELEASES.split('PREVIOUS_WINDOW_BODY = """', 1)[1].split('"""', 1)[0]
WINDOW_SECONDS = 0.25
WINDOW = f"{WINDOW_SECONDS}::pg_catalog.float8"


def as_postgres(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, **kwargs)


class CountedCluster:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="dbmon-callgrind-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data, self.port = self.root / "data", free_port()
        done = as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        assert done.returncode == 0, done.stderr
        log = open(self.root / "log", "w")  # noqa: SIM115 - the server's log for its lifetime
        self.server = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", "valgrind", "--tool=callgrind", "--trace-children=yes",
             f"--callgrind-out-file={self.root}/cg.%p", str(PG_BIN / "postgres"), "-D", str(self.data),
             "-p", str(self.port), "-k", str(self.root), "-c", "listen_addresses=", "-c", "autovacuum=off",
             "-c", "fsync=off"], stdout=log, stderr=subprocess.STDOUT)
        self.dsn = f"host={self.root} port={self.port} user=postgres dbname=postgres"
        deadline = time.monotonic() + 120
        while True:
            try:
                psycopg2.connect(self.dsn).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(1)

    def instructions(self, pid: int) -> int:
        path = self.root / f"cg.{pid}"
        for _ in range(600):
            found = TOTAL.search(path.read_text()) if path.exists() else None
            if found:
                return int(found.group(1))
            time.sleep(0.2)
        raise RuntimeError(f"no callgrind output for backend {pid}")

    def stop(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "stop", "-m", "fast", "-t", "120")
        try:
            self.server.wait(30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def set_trigger(dsn: str, kind: str, slowdown: float = 1.0) -> None:
    event_trigger.uninstall(dsn)
    if kind == "none":
        return
    event_trigger.install(dsn)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        scaled = f"{WINDOW_SECONDS * slowdown:.3f}::pg_catalog.float8"
        if kind == "empty":
            cur.execute(event_trigger.FUNCTION_SQL.replace(event_trigger.FUNCTION_BODY, "BEGIN RETURN; END"))
        elif kind == "release":
            for name in event_trigger.TRIGGERS:
                cur.execute(f"DROP EVENT TRIGGER {name}")
            cur.execute(f"DROP FUNCTION {event_trigger.FUNCTION}()")
            cur.execute(f"CREATE FUNCTION {event_trigger.FUNCTION}() RETURNS event_trigger LANGUAGE plpgsql "
                        f"SECURITY DEFINER SET search_path = {event_trigger.SEARCH_PATH} AS $fn${RELEASE_BODY}$fn$")
            for name, event in (("dbmon_schema_ddl_end", "ddl_command_end"), ("dbmon_schema_sql_drop", "sql_drop")):
                cur.execute(f"CREATE EVENT TRIGGER {name} ON {event} EXECUTE FUNCTION {event_trigger.FUNCTION}()")
        elif kind == "signed_scaled":
            cur.execute(f"CREATE TABLE {event_trigger.EARLIER_KEY_TABLE} (key bytea NOT NULL)")
            cur.execute(f"INSERT INTO {event_trigger.EARLIER_KEY_TABLE} VALUES (%s)", (bytes(range(32)),))  # nosec B608
            cur.execute(f"CREATE FUNCTION {event_trigger.EARLIER_SENDER.replace('(', '(tag ', 1)} RETURNS pg_catalog.void "
                        f"LANGUAGE plpgsql SECURITY DEFINER SET search_path = {event_trigger.SEARCH_PATH} "
                        f"AS $fn${SIGNED_SENDER_BODY.replace(WINDOW, scaled)}$fn$")
            cur.execute(f"CREATE OR REPLACE FUNCTION {event_trigger.FUNCTION}() RETURNS event_trigger LANGUAGE plpgsql "
                        f"SECURITY DEFINER AS $fn${SIGNED_BODY.replace(WINDOW, scaled)}$fn$")
        elif kind == "window_scaled":
            cur.execute(f"CREATE OR REPLACE FUNCTION {event_trigger.FUNCTION}() RETURNS event_trigger LANGUAGE plpgsql "
                        f"VOLATILE AS $fn${WINDOW_BODY.replace(WINDOW, scaled)}$fn$")
    conn.close()


def native_seconds(mode: str, runs: int = 5) -> float:
    """The migration's median wall time on a plain private cluster, without a trigger."""
    from tests.posture.clusters import PrivateCluster

    cluster = PrivateCluster()
    cluster.start(listen="")
    try:
        timings = []
        for run in range(runs + 1):
            conn = psycopg2.connect(cluster.dsn())
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"CREATE SCHEMA native_{run}")
                conn.autocommit = mode == "autocommit"
                started = time.perf_counter()
                for statement in migration(f"native_{run}"):
                    cur.execute(statement)
                conn.commit()
                timings.append(time.perf_counter() - started)
            conn.close()
        return statistics.median(timings[1:])  # the first warms the cluster up
    finally:
        cluster.stop()


def once(cluster: CountedCluster, mode: str, schema: str, timings: list | None = None) -> int:
    conn = psycopg2.connect(cluster.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        cur.execute(f"CREATE SCHEMA {schema}")
        conn.autocommit = mode == "autocommit"
        started = time.perf_counter()
        for statement in migration(schema):
            cur.execute(statement)
        conn.commit()
        if timings is not None:
            timings.append(time.perf_counter() - started)
    conn.close()
    counted = cluster.instructions(pid)
    cleanup = psycopg2.connect(cluster.dsn)
    cleanup.autocommit = True
    with cleanup.cursor() as cur:
        cur.execute(f"DROP SCHEMA {schema} CASCADE")
        cur.execute("VACUUM")
    cleanup.close()
    return counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per kind and mode")
    args = parser.parse_args()
    native = {mode: native_seconds(mode) for mode in MODES}
    cluster = CountedCluster()
    results: dict = {}
    try:
        once(cluster, "autocommit", "warm_up")
        n = 0
        for mode in MODES:
            counts: dict[str, list[int]] = {kind: [] for kind in KINDS}
            timings: list[float] = []
            set_trigger(cluster.dsn, "none")
            n += 1
            once(cluster, mode, f"bench_trigger_{n}", timings)  # the slowdown, for the windowed releases
            for run in range(args.runs):
                for kind in KINDS if run % 2 == 0 else KINDS[::-1]:
                    slowdown = statistics.median(timings) / native[mode]
                    set_trigger(cluster.dsn, kind, slowdown)
                    n += 1
                    counts[kind].append(once(cluster, mode, f"bench_trigger_{n}",
                                             timings if kind == "none" else None))
            base = min(counts["none"])
            results[mode] = {kind: {"million_instructions": [round(c / 1e6, 1) for c in counted],
                                    "overhead_pct": round(100 * (min(counted) / base - 1), 1),
                                    "per_statement_instructions": round((min(counted) - base) / len(migration("s")))}
                             for kind, counted in counts.items()}
            results[mode]["native_seconds"] = round(native[mode], 3)
            results[mode]["callgrind_seconds"] = round(statistics.median(timings), 1)
            results[mode]["scaled_window_seconds"] = round(WINDOW_SECONDS * statistics.median(timings) / native[mode], 2)
            print(mode, {kind: r["overhead_pct"] if isinstance(r, dict) else r for kind, r in results[mode].items()},
                  flush=True)
    finally:
        cluster.stop()
    print(write("schema_trigger_instructions", {"server": "private cluster under callgrind", "modes": results}))


if __name__ == "__main__":
    main()
