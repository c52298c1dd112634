"""Host resource samples."""

from __future__ import annotations

from monitor_app.metrics.host_liveness import sampler_reported
from monitor_app.metrics.host_resources import host_identity, sample_host
from monitor_app.platform.runtime import Runtime
from monitor_app.store.base import utcnow
from monitor_app.store.models import MetricSample
from workers.task_base import dbmon_task


@dbmon_task("metrics.host_sample", time_limit=30)
def host_sample(rt: Runtime) -> dict:
    paths = [rt.settings.data_dir] + [w.path for w in rt.config.watch]
    samples = sample_host(paths)
    now = utcnow()
    hostname = host_identity()
    with rt.store.session() as s:
        host = sampler_reported(s, hostname, now)
        s.add_all(MetricSample(name=m.name, asset_id=host.id, value=m.value, labels=m.labels, at=now)
                  for m in samples)
        host_id = host.id
    return {"asset_id": host_id, "samples": {m.name + _suffix(m.labels): m.value for m in samples}}


def _suffix(labels: dict) -> str:
    return f"[{labels['path']}]" if "path" in labels else ""
