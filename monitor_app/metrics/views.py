"""Metric series and their buckets as plain JSON-able dicts, for the API and the CLI."""

from __future__ import annotations

from monitor_app.metrics.chunk_codec import Bucket
from monitor_app.store.base import iso
from monitor_app.store.models import MetricSeries


def series_dict(s: MetricSeries) -> dict:
    return {"id": s.id, "asset_id": s.asset_id, "name": s.name, "labels": s.labels,
            "last_value": s.last_value, "last_at": iso(s.last_at)}


def bucket_dict(b: Bucket) -> dict:
    return {"t": iso(b.start), "min": b.min, "max": b.max, "avg": b.avg, "last": b.last, "count": b.samples}
