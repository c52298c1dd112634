"""POST /api/v1/scans -> result stored, through the real API server and a real worker.

For each mode (embedded: SQLite + filesystem broker; distributed: PostgreSQL +
Redis) it runs RUNS rounds of N sequential reachability scans of a local
PostgreSQL asset and reports the median and p99 per round and across rounds.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.stats import summary, write
from tests.harness import Deployment, wait_for
from tests.services import free_port

N = 50
RUNS = 3


def measure(mode: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"dbmon-bench-{mode}-"))
    d = Deployment(mode, tmp, {"DBMON_FILESYSTEM_POLLING_INTERVAL": "0.01" if mode == "embedded" else "0.1"})
    rounds = []
    try:
        d.migrate()
        port = free_port()
        d.write_config("assets:\n  - name: pg\n    engine: postgresql\n    host: 127.0.0.1\n"
                       "    database: postgres\n    user: postgres\n    insecure: true\n")
        d.start_worker()
        d.start("api", "api", "--port", str(port))
        assert d.scan("assets.sync_config").status == "done"
        key = d.cli("apikey", "create", "--role", "operator", check=True).stdout.strip()
        base, headers = f"http://127.0.0.1:{port}/api/v1", {"X-API-Key": key}
        wait_for(lambda: _ok(f"http://127.0.0.1:{port}/healthz"), 60, interval=0.2, what="api")
        asset_id = requests.get(base + "/assets?kind=database", headers=headers, timeout=5).json()["items"][0]["id"]
        session = requests.Session()
        for _ in range(RUNS):
            latencies = []
            for _ in range(N):
                started = time.time()
                resp = session.post(base + "/scans", json={"kind": "reachability", "asset_id": asset_id},
                                    headers=headers, timeout=10)
                resp.raise_for_status()
                run = d.wait_run(resp.json()["id"], timeout=30)
                assert run.status == "done", run.error
                latencies.append((run.finished_at.timestamp() - started) * 1000)
            rounds.append(summary(latencies))
    finally:
        d.close()
    return {"rounds": rounds, "median_ms": statistics.median(r["median"] for r in rounds),
            "p99_ms": statistics.median(r["p99"] for r in rounds)}


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main() -> None:
    modes = sys.argv[1:] or ["embedded", "distributed"]
    results = {mode: measure(mode) for mode in modes}
    path = write("foundation_scan_latency", {"unit": "ms", "n_per_round": N, "rounds": RUNS, "modes": results})
    for mode, r in results.items():
        print(f"{mode:12s} POST /scans -> stored: median {r['median_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
