"""What the event trigger costs concurrent DDL: commits that notify queue behind each other.

PostgreSQL takes one server-wide lock for a transaction that sends a notification, at its
commit, and holds it until the commit is flushed; transactions that notify therefore commit one
at a time instead of sharing a flush. A migration is one session and never waits on itself; many
sessions committing DDL at once do. The case measured: sessions that create and drop a temporary
table (DDL too), autocommitted (two statements, two transactions) and in a transaction block
(`CREATE TEMP TABLE ... ON COMMIT DROP`, an insert, the commit), with 1 and 8 pgbench clients,
on a private cluster with the default durable commit. Per kind, rounds alternate their order:
no trigger; the previous release, whose autocommitted statements notified at most once per
0.25 s window per session; the current trigger, which notifies every DDL transaction.

    python bench/schema_trigger_contention.py [--rounds 5] [--seconds 5]

Needs root (the cluster runs as postgres via runuser). Writes
bench/results/schema_trigger_contention.json.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.schema_trigger_instructions import set_trigger  # noqa: E402
from bench.stats import write  # noqa: E402
from tests.posture.clusters import PrivateCluster  # noqa: E402

KINDS = ("none", "window_release", "current")
# How `schema_trigger_instructions` installs each; the window release's window unscaled.
INSTALLED_AS = {"none": "none", "window_release": "window_scaled", "current": "current"}
SCRIPTS = {
    "autocommit": "CREATE TEMP TABLE IF NOT EXISTS scratch (x int);\nDROP TABLE scratch;\n",
    "transaction": "BEGIN;\nCREATE TEMP TABLE scratch (x int) ON COMMIT DROP;\nINSERT INTO scratch VALUES (1);\nCOMMIT;\n",
}
CLIENTS = (1, 8)


def pgbench(cluster: PrivateCluster, script: Path, clients: int, seconds: int) -> float:
    done = subprocess.run(cluster.pgbench_command("-n", "-c", str(clients), "-j", "2", "-T", str(seconds),
                                                  "-f", str(script)), capture_output=True, text=True, check=True)
    return float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    scripts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in SCRIPTS.items():
            scripts[name] = Path(tmp) / f"{name}.sql"
            scripts[name].write_text(text)
        cluster = PrivateCluster()
        cluster.start(listen="", max_connections="50")
        tps: dict[str, list[float]] = {}
        try:
            for run in range(args.rounds):
                for kind in KINDS if run % 2 == 0 else KINDS[::-1]:
                    set_trigger(cluster.dsn(), INSTALLED_AS[kind], slowdown=1.0)
                    for script, path in scripts.items():
                        for clients in CLIENTS:
                            tps.setdefault(f"{script}/{clients}/{kind}", []).append(
                                pgbench(cluster, path, clients, args.seconds))
                print(f"round {run + 1} of {args.rounds}", flush=True)
        finally:
            cluster.stop()
    results = {}
    for script in SCRIPTS:
        for clients in CLIENTS:
            base = statistics.median(tps[f"{script}/{clients}/none"])
            results[f"{script}, {clients} clients"] = {
                kind: {"tps": [round(t) for t in tps[f"{script}/{clients}/{kind}"]],
                       "median_tps": round(statistics.median(tps[f"{script}/{clients}/{kind}"])),
                       "vs_none_pct": round(100 * (statistics.median(tps[f"{script}/{clients}/{kind}"]) / base - 1), 1)}
                for kind in KINDS}
            print(script, clients, {k: v["vs_none_pct"] for k, v in results[f"{script}, {clients} clients"].items()})
    print(write("schema_trigger_contention", {"server": "private cluster, fsync and synchronous_commit on",
                                              "rounds": args.rounds, "seconds": args.seconds, "results": results}))


if __name__ == "__main__":
    main()
