"""Metric series and their buckets as plain JSON-able dicts, for the API and the CLI."""

from __future__ import annotations

from monitor_app.metrics.chunk_codec import from_epoch_ms
from monitor_app.metrics.series_query import SeriesBuckets
from monitor_app.store.base import iso
from monitor_app.store.models import MetricSeries


def series_dict(s: MetricSeries) -> dict:
    return {"id": s.id, "asset_id": s.asset_id, "name": s.name, "labels": s.labels,
            "last_value": s.last_value, "last_at": iso(s.last_at)}


def bucket_dicts(buckets: SeriesBuckets, times: dict[int, str | None]) -> list[dict]:
    """A series' buckets as JSON rows; `times` caches the text of each step's start, which every
    series of a query shares."""
    out = []
    for t, lo, hi, total, last, count in zip(*buckets, strict=True):
        text = times.get(t)
        if text is None:
            text = times[t] = iso(from_epoch_ms(t))
        out.append({"t": text, "min": lo, "max": hi, "avg": total / count, "last": last, "count": count})
    return out


def anomaly_dict(a) -> dict:
    return {"id": a.id, "rule": a.rule, "kind": a.kind, "series_id": a.series_id, "asset_id": a.asset_id,
            "metric": a.metric, "start": iso(a.start), "end": iso(a.end_at), "direction": a.direction,
            "score": a.score, "baseline": a.baseline, "peak": a.peak, "adapted": a.adapted}
