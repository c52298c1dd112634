"""A watch's size as series, so the forecasts and anomaly rules that work on any series work on a
data directory or WAL too (`DiskFullSoon`-style rules on `file.bytes`).

Series belong to the watch's asset; a watch of no asset (a path in the config file) belongs to the
host dbmon runs on, whose files they are."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from monitor_app.metrics.host_liveness import host_asset
from monitor_app.metrics.host_sampling import host_name
from monitor_app.metrics.sample_store import SeriesSample, labels_key
from monitor_app.store.models.files import FileWatch
from monitor_app.store.models.metrics import MetricSeries


def growth_labels(watch: FileWatch) -> dict:
    return {"path": watch.path, "kind": ",".join(watch.kinds)}


def write_growth(rt, s, watch: FileWatch, now: datetime) -> None:
    asset_id = watch.asset_id or host_asset(s, host_name(rt.settings), now).id
    labels = growth_labels(watch)
    samples = [SeriesSample(asset_id, "file.bytes", float(watch.total_bytes), now, labels),
               SeriesSample(asset_id, "file.entries", float(watch.entries), now, labels)]
    previous = s.execute(select(MetricSeries.last_value, MetricSeries.last_at).where(
        MetricSeries.asset_id == asset_id, MetricSeries.name == "file.bytes",
        MetricSeries.labels_key == labels_key(labels))).first()
    if previous is not None and previous.last_at is not None and previous.last_value is not None:
        seconds = (now - previous.last_at).total_seconds()
        if seconds > 0:
            rate = (watch.total_bytes - previous.last_value) / seconds
            samples.append(SeriesSample(asset_id, "file.bytes_per_second", rate, now, labels))
    rt.series_writer.write_in(s, samples)
