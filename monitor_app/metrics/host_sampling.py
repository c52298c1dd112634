"""Sampling the host dbmon runs on, and storing it as samples and series of its host asset.

Every machine running a worker samples itself (`workers/host_sampler.py` runs this on a timer in
each worker; one process per host at a time, by a lease named after the host), so in a
distributed deployment each worker host is an asset with its own resources, not whichever one
happened to take a task.
"""

from __future__ import annotations

import socket

import psutil

from monitor_app.errors import DbmonError
from monitor_app.metrics import host_io
from monitor_app.metrics.host_liveness import host_asset, sampler_reported
from monitor_app.metrics.host_resources import io_counters, sample_host
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.platform.collector_health import Attempt, asset_subject, report
from monitor_app.store.base import utcnow
from monitor_app.store.models import MetricSample


def host_name(settings) -> str:
    """The name this machine's samples are filed under: `DBMON_HOST_NAME`, else its hostname."""
    return settings.host_name or socket.gethostname()


def sample_and_store(rt) -> dict:
    paths = [rt.settings.data_dir] + [w.path for w in rt.config.watch]
    hostname = host_name(rt.settings)
    try:
        samples = sample_host(paths)
        counters = io_counters()
    except (OSError, psutil.Error) as exc:
        error = f"sampling the host failed: {type(exc).__name__}: {exc}"
        with rt.store.session() as s:
            host_id = host_asset(s, hostname, utcnow()).id
        report(rt.store, Attempt("host", asset_subject(host_id), host_id, hostname, error),
               rt.settings.collector_failures_before_event)
        raise DbmonError(error) from None
    now = utcnow()
    try:
        with rt.store.session() as s:
            host_id = sampler_reported(s, hostname, now).id
            samples += host_io.rates_since_last(s, host_id, counters, psutil.boot_time(), now)
            s.add_all(MetricSample(name=m.name, asset_id=host_id, value=m.value, labels=m.labels, at=now)
                      for m in samples)
            # As series too: kept in rollups for 90 days, and what forecasts and anomaly rules read.
            rt.series_writer.write_in(s, [SeriesSample(host_id, m.name, m.value, now, m.labels) for m in samples])
    except Exception:
        rt.series_writer.forget()  # series it created in the rolled-back transaction are gone
        raise
    report(rt.store, Attempt("host", asset_subject(host_id), host_id, hostname),
           rt.settings.collector_failures_before_event)
    return {"asset_id": host_id, "samples": {m.name + _suffix(m.labels): m.value for m in samples}}


def _suffix(labels: dict) -> str:
    label = labels.get("path") or labels.get("engine")
    return f"[{label}]" if label else ""
