"""Source event stored -> webhook received, through real workers: median and p99 over 100.

Each event is committed with `record_event` by a Runtime (as a watcher or task would); the
store's after-commit hook queues evaluation, a worker evaluates and queues delivery, a
worker posts to a local receiver. Target: p99 < 1 s."""

from __future__ import annotations

import argparse
import statistics
import time

from bench.alerting_common import HttpReceiver, add_asset, deployment, record, summary, start_worker, webhook_alerting, write


def run_once(mode: str, count: int) -> list[float]:
    peer = HttpReceiver()
    try:
        with deployment(mode, webhook_alerting(peer.url())) as (dep, rt):
            dep.peer = peer
            start_worker(dep)
            assets = [add_asset(rt, f"lat{i}") for i in range(count)]
            latencies = []
            for i, asset in enumerate(assets):
                started = time.monotonic()
                record(rt, "asset.down", asset, summary="bench")
                got = peer.wait_for(i + 1, timeout=15)
                if len(got) < i + 1:
                    raise SystemExit(f"event {i} not delivered within 15 s")
                latencies.append(got[i].at - started)
                time.sleep(0.05)
            return latencies
    finally:
        peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="embedded,distributed")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = {"count": args.count, "runs": args.runs, "target_p99_s": 1.0}
    for mode in args.modes.split(","):
        runs = [summary(run_once(mode, args.count)) for _ in range(args.runs)]
        result[mode] = {"runs": runs, "median_s": statistics.median(r["median"] for r in runs),
                        "p99_s": statistics.median(r["p99"] for r in runs)}
        print(f"{mode}: median {result[mode]['median_s'] * 1000:.0f} ms, p99 {result[mode]['p99_s'] * 1000:.0f} ms")
    print(write("alerting_latency", result))


if __name__ == "__main__":
    main()
