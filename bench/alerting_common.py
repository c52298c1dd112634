"""Shared set-up for the alerting benchmarks: a deployment (embedded or distributed) with
real worker and beat processes, a real webhook receiver, and JSON results."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import yaml

from bench.stats import summary, write  # noqa: F401  (re-exported for the alerting benchmarks)
from monitor_app.store.migrate import upgrade  # noqa: F401
from tests.alerting.peers import HttpReceiver  # noqa: F401
from tests.harness import Deployment
from tests.services import create_pg_database, drop_pg_database  # noqa: F401

__all__ = ["HttpReceiver", "create_pg_database", "drop_pg_database", "upgrade", "deployment", "start_worker",
           "add_asset", "record", "summary", "write", "webhook_alerting"]


@contextmanager
def deployment(mode: str, alerting: dict, **settings):
    """Yields (Deployment, Runtime publishing to it) on the test harness; removed afterwards.
    Log level WARNING: INFO logging of every task would measure the logger."""
    tmp = Path(tempfile.mkdtemp(prefix="dbmon-bench-"))
    # Production defaults, not the harness's shortened test timings.
    env = {"DBMON_LOG_LEVEL": "WARNING", "DBMON_FILESYSTEM_POLLING_INTERVAL": "0.1", "DBMON_TASK_LEASE_SECONDS": "30",
           "DBMON_TASK_QUEUED_GRACE": "60", "DBMON_REDELIVER_INTERVAL": "15",
           **{f"DBMON_{k.upper()}": str(v) for k, v in settings.items()}}
    dep = Deployment(mode, tmp, env)
    rt = None
    try:
        dep.write_config(yaml.safe_dump({"alerting": alerting}))
        dep.migrate()
        # The harness leaves *_FILE variables out of its settings (secret files), config file included.
        from monitor_app.platform.runtime import Runtime

        rt = Runtime(dep.settings().model_copy(update={"config_file": dep.config_file}), sender=dep.runtime.sender)
        dep.bench_runtime = rt
        yield dep, rt
    finally:
        if rt is not None:
            rt.close()
        dep.close()
        shutil.rmtree(tmp, ignore_errors=True)


def start_worker(dep: Deployment, name: str = "worker") -> None:
    """Start a worker and wait until it consumes (harness readiness reads an INFO log line)."""
    from monitor_app.alerting.service import dispatch_deliveries, alert_operations_for

    dep.start(name, "worker", "-n", f"{name}-{id(dep)}@bench")
    rt, peer = dep.bench_runtime, dep.peer
    dispatch_deliveries(rt, [alert_operations_for(rt).test_send("ops")])
    if not peer.wait_for(1, timeout=90):
        raise SystemExit(f"worker did not start: {dep.log(name)[-2000:]}")
    peer.requests.clear()


def add_asset(rt, name: str) -> int:
    from monitor_app.store.models.core import Asset

    with rt.store.session() as s:
        asset = Asset(kind="database", name=name, source="config", external_id=name, labels={}, connection={},
                      details={})
        s.add(asset)
        s.flush()
        return asset.id


def record(rt, type_: str, asset_id: int, **kw) -> int:
    from monitor_app.platform.event_log import record_event

    with rt.store.session() as s:
        return record_event(s, type=type_, severity="critical", asset_id=asset_id, **kw).id


def webhook_alerting(url: str, **extra) -> dict:
    return {"rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"],
                       "resolve_on": ["asset.up"]}],
            "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": url, "timeout": 2}},
            "route": {"channels": ["ops"]}, **extra}
