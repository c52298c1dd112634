"""Channel down for 30 s while 200 alerts fire, then back: count lost and duplicate
notifications at the receiver (target: 0 and 0), and how long the backlog takes to drain."""

from __future__ import annotations

import argparse
import time
from collections import Counter

from bench.alerting_common import HttpReceiver, add_asset, deployment, record, start_worker, webhook_alerting, write


def run_once(mode: str, alerts: int, outage: float) -> dict:
    peer = HttpReceiver()
    try:
        cfg = webhook_alerting(peer.url(), outbox={"backoff_base": "1s", "backoff_max": "10s"})
        with deployment(mode, cfg, alert_sweep_interval=1) as (dep, rt):
            dep.peer = peer
            start_worker(dep)
            dep.start("beat", "beat")
            assets = [add_asset(rt, f"out{i}") for i in range(alerts)]
            peer.stop()
            down_at = time.monotonic()
            for i, asset in enumerate(assets):  # spread over the outage
                record(rt, "asset.down", asset, summary="bench")
                time.sleep(max(0.0, down_at + (i + 1) * outage * 0.8 / alerts - time.monotonic()))
            time.sleep(max(0.0, down_at + outage - time.monotonic()))
            peer.start()
            back_at = time.monotonic()
            peer.wait_for(alerts, timeout=180)
            drained = time.monotonic() - back_at
            time.sleep(5)  # let any duplicate show up
            keys = Counter(r.headers["Idempotency-Key"] for r in peer.requests)
            assets_seen = {r.json()["commonLabels"]["asset"] for r in peer.requests}
            return {"alerts": alerts, "outage_s": outage, "received": len(peer.requests),
                    "lost": alerts - len(assets_seen), "duplicates": sum(c - 1 for c in keys.values()),
                    "drain_after_recovery_s": round(drained, 2)}
    finally:
        peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="embedded,distributed")
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--outage", type=float, default=30.0)
    args = parser.parse_args()
    result = {}
    for mode in args.modes.split(","):
        result[mode] = run_once(mode, args.alerts, args.outage)
        print(mode, result[mode])
    print(write("alerting_outage", result))


if __name__ == "__main__":
    main()
