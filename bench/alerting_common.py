"""Shared set-up for the alerting benchmarks: a deployment (embedded or distributed) with
real worker and beat processes, a real webhook receiver, and JSON results."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor_app.store.migrate import upgrade  # noqa: E402
from tests.alerting.peers import HttpReceiver  # noqa: E402
from tests.alerting.processes import Deployment, PrivateRedis  # noqa: E402
from tests.services import create_pg_database, drop_pg_database  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "median": statistics.median(values), "p99": percentile(values, 99),
            "min": min(values), "max": max(values)}


def write(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"alerting_{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


@contextmanager
def deployment(mode: str, alerting: dict, **settings):
    """Yields (Deployment, Runtime publishing to it); everything is removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="dbmon-bench-"))
    cleanup = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    if mode == "embedded":
        url, broker = f"sqlite:///{tmp / 'dbmon.sqlite3'}", None
    else:
        redis = PrivateRedis()
        cleanup.append(redis.stop)
        name, pg = create_pg_database("dbmon_bench")
        cleanup.append(lambda: drop_pg_database(name))
        url, broker = pg.replace("postgresql://", "postgresql+psycopg2://", 1), redis.url
    upgrade(url)
    dep = Deployment(tmp, url, alerting, broker, **settings)
    for key, value in dep.env.items():
        if key.startswith("DBMON_"):
            os.environ[key] = value
    from monitor_app.runtime import Runtime
    from workers.celery_app import make_celery

    app = make_celery(dep.settings())

    def send(name, kwargs, run_id, queue):
        app.send_task(name, kwargs=kwargs, task_id=run_id, queue=queue, routing_key=queue)

    rt = Runtime(dep.settings(), sender=send)
    try:
        yield dep, rt
    finally:
        rt.close()
        dep.stop_all()
        for fn in reversed(cleanup):
            fn()


def add_asset(rt, name: str) -> int:
    from monitor_app.store.models.core import Asset

    with rt.store.session() as s:
        asset = Asset(kind="database", name=name, source="config", external_id=name, labels={}, connection={},
                      details={})
        s.add(asset)
        s.flush()
        return asset.id


def record(rt, type_: str, asset_id: int, **kw) -> int:
    from monitor_app.events import record_event

    with rt.store.session() as s:
        return record_event(s, type=type_, severity="critical", asset_id=asset_id, **kw).id


def wait_ready(rt, peer: HttpReceiver, timeout: float = 60) -> None:
    from monitor_app.alerting.service import dispatch_deliveries, engine_for

    dispatch_deliveries(rt, [engine_for(rt).test_send("ops")])
    if not peer.wait_for(1, timeout=timeout):
        raise SystemExit("worker did not start")
    peer.requests.clear()


def webhook_alerting(url: str, **extra) -> dict:
    return {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"],
                       "resolve_on": ["asset.up"]}],
            "channels": {"ops": {"type": "webhook", "url": url, "timeout": 2}},
            "route": {"channels": ["ops"]}, **extra}
