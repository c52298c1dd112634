"""Host resource samples."""

from __future__ import annotations

from dataclasses import replace

import psutil
from sqlalchemy import select

from monitor_app.collector_health import Attempt, asset_subject, report
from monitor_app.errors import DbmonError
from monitor_app.host_resources import host_identity, sample_host
from monitor_app.runtime import Runtime
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, MetricSample
from workers.task_base import dbmon_task


def _host_asset(rt: Runtime, hostname: str) -> int:
    with rt.store.session() as s:
        host = s.scalar(select(Asset).where(Asset.source == "host", Asset.external_id == hostname))
        if host is None:
            now = utcnow()
            host = Asset(kind="host", engine=None, name=hostname, source="host", external_id=hostname,
                         labels={}, connection={}, details={}, status="up", status_changed_at=now)
            s.add(host)
            s.flush()
        return host.id


@dbmon_task("metrics.host_sample", queue="metrics", time_limit=30)
def host_sample(rt: Runtime) -> dict:
    paths = [rt.settings.data_dir] + [w.path for w in rt.config.watch]
    hostname = host_identity()
    host_id = _host_asset(rt, hostname)
    attempt = Attempt("host", asset_subject(host_id), host_id, hostname)
    try:
        samples = sample_host(paths)
    except (OSError, psutil.Error) as exc:
        error = f"sampling the host failed: {type(exc).__name__}: {exc}"
        report(rt.store, replace(attempt, error=error), rt.settings.collector_failures_before_event)
        raise DbmonError(error) from None
    now = utcnow()
    with rt.store.session() as s:
        s.get(Asset, host_id).last_checked_at = now
        s.add_all(MetricSample(name=m.name, asset_id=host_id, value=m.value, labels=m.labels, at=now)
                  for m in samples)
    report(rt.store, attempt, rt.settings.collector_failures_before_event)
    return {"asset_id": host_id, "samples": {m.name + _suffix(m.labels): m.value for m in samples}}


def _suffix(labels: dict) -> str:
    return f"[{labels['path']}]" if "path" in labels else ""
