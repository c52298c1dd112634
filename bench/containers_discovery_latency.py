"""Container start -> asset stored, through the real watcher and worker processes.

For each of N containers: t0 just before `create`, then `start`; the time until the asset row
is in the store. Several runs; per run median and p99; the figures reported are the medians
of those. Target: p99 < 2 s.

    python -m bench.containers_discovery_latency [--containers 50] [--runs 3] [--modes distributed,embedded]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402
from sqlalchemy import select  # noqa: E402

from monitor_app.store.models import Asset  # noqa: E402
from tests.containers.conftest import IMAGES, cleanup, make_image  # noqa: E402

BENCH_LABEL = "containers-bench"  # its own label: a test session cleaning up leaves these alone
from tests.containers.deployment import Deployment  # noqa: E402

from bench.stats import summary, write  # noqa: E402


def one_run(client, n: int, tag: str, mode: str) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="dbmon-bench-") as tmp:
        d = Deployment(Path(tmp), mode=mode)
        try:
            d.start_worker()
            d.start_beat()  # redelivers any task message the broker lost
            d.start_watcher()
            latencies = []
            for i in range(n):
                name = f"dbmt-bench-{tag}-{i}"
                t0 = time.perf_counter()
                c = client.api.create_container("dbmct-bench/postgres:16", name=name, labels={"dbmon-test": BENCH_LABEL},
                                                environment={"POSTGRES_PASSWORD": "x"},
                                                host_config=client.api.create_host_config(network_mode="none"))
                client.api.start(c["Id"])
                while True:
                    with d.store.session() as s:
                        if s.scalar(select(Asset.id).where(Asset.source == "docker", Asset.external_id == name)):
                            break
                    if time.perf_counter() - t0 > 30:
                        raise SystemExit(f"{name}: no asset after 30 s\n{d.log('worker')[-3000:]}")
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - t0)
                client.api.remove_container(c["Id"], force=True)
            return latencies
        finally:
            d.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="distributed,embedded",
                    help="distributed: Redis broker + PostgreSQL store; embedded: filesystem broker + SQLite")
    args = ap.parse_args(argv if argv is not None else [])
    client = docker.from_env(timeout=60)
    make_image(client, "dbmct-bench/postgres:16", label_value=BENCH_LABEL, **IMAGES["dbmct/postgres:16"])
    modes = {}
    try:
        for mode in args.modes.split(","):
            runs = []
            for r in range(args.runs):
                runs.append({k: round(v, 4) for k, v in summary(one_run(client, args.containers, f"{mode}{r}", mode)).items()})
                print(f"{mode} run {r + 1}: median {runs[-1]['median']:.3f} s, p99 {runs[-1]['p99']:.3f} s", flush=True)
            modes[mode] = {"runs": runs, "median_s": statistics.median(x["median"] for x in runs),
                           "p99_s": statistics.median(x["p99"] for x in runs)}
            modes[mode]["meets_target"] = modes[mode]["p99_s"] < 2.0
    finally:
        cleanup(client, BENCH_LABEL)
    path = write("containers_discovery_latency", {
        "what": "container create+start -> asset row stored, through watcher + worker + beat processes",
        "containers_per_run": args.containers, "target_p99_s": 2.0, "modes": modes})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
