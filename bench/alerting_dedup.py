"""Noise reduction through real workers:
- 1,000 identical firings (one asset, one rule) -> exactly 1 notification;
- 100 alerts of one incident within 1 s -> 1 first page at once plus batched follow-ups."""

from __future__ import annotations

import argparse
import time

from bench.alerting_common import HttpReceiver, add_asset, deployment, start_worker, write


def record_many(rt, events: list[dict]) -> None:
    from monitor_app.platform.event_log import record_event

    with rt.store.session() as s:
        for e in events:
            record_event(s, severity="critical", **e)


def run_once(mode: str) -> dict:
    peer = HttpReceiver()
    cfg = {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]},
                     {"name": "SchemaChange", "kind": "event", "event_types": ["schema.changed"],
                      "label_from_payload": ["object"]}],
           "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": peer.url(), "timeout": 2}},
           "route": {"channels": ["ops"], "group_by": ["asset", "alertname"], "group_interval": "5s"}}
    try:
        with deployment(mode, cfg, alert_sweep_interval=1) as (dep, rt):
            dep.peer = peer
            start_worker(dep)
            dep.start("beat", "beat")
            # 1,000 identical firings, committed in bursts of 50 as a busy source would.
            down = add_asset(rt, "flappy")
            started = time.monotonic()
            for _burst in range(20):
                record_many(rt, [{"type": "asset.down", "asset_id": down, "summary": "down"}] * 50)
            peer.wait_for(1, timeout=30)
            time.sleep(8)
            identical = {"firings": 1000, "notifications": len(peer.requests),
                         "seconds_to_record": round(time.monotonic() - started, 2)}
            peer.requests.clear()
            # 100 alerts of one incident inside one second.
            db = add_asset(rt, "orders")
            started = time.monotonic()
            for burst in range(10):
                record_many(rt, [{"type": "schema.changed", "asset_id": db, "summary": "ddl",
                                  "payload": {"object": f"public.t{burst * 10 + i}"}} for i in range(10)])
                time.sleep(max(0.0, started + (burst + 1) * 0.1 - time.monotonic()))
            window = time.monotonic() - started
            peer.wait_for(2, timeout=30)
            time.sleep(8)
            bodies = [r.json() for r in peer.requests]
            first_page_after = peer.requests[0].at - started if peer.requests else None
            storm = {"alerts": 100, "recorded_within_s": round(window, 2),
                     "notifications": len(bodies), "kinds": [b["dbmon"]["kind"] for b in bodies],
                     "alerts_per_notification": [len(b["alerts"]) for b in bodies],
                     "first_page_after_s": round(first_page_after, 3) if first_page_after else None}
            return {"identical_firings": identical, "incident_storm": storm}
    finally:
        peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="embedded,distributed")
    args = parser.parse_args()
    result = {}
    for mode in args.modes.split(","):
        result[mode] = run_once(mode)
        print(mode, result[mode])
    print(write("alerting_dedup", result))


if __name__ == "__main__":
    main()
