"""The latest value of every fresh series in Prometheus' text format, so existing Prometheus and
Grafana setups can scrape dbmon.

Each series becomes a gauge named `dbmon_<metric>` (dots and other characters Prometheus does not
allow become `_`), labelled with the asset's name, id and engine, the series' own labels, and the
asset's labels as `asset_label_<name>`. Asset labels come from container labels and config, so
their names are sanitised, deny-listed values are redacted, and values are escaped by
prometheus_client. A series not written to within `stale_after` is left out, as a stopped
exporter's would be.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest
from sqlalchemy import select

from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.store.models import Asset, MetricSeries

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
RESERVED = ("asset", "asset_id", "engine")


def metric_name(name: str) -> str:
    return "dbmon_" + _INVALID.sub("_", name)


def label_name(name: str) -> str:
    cleaned = _INVALID.sub("_", str(name))[:100]
    return cleaned if cleaned and not cleaned[0].isdigit() and not cleaned.startswith("__") else f"l_{cleaned}"


def _labels(series: MetricSeries, asset: Asset, redactor: LabelRedactor) -> dict[str, str]:
    labels = {f"asset_label_{label_name(k)}": str(v) for k, v in redactor.labels(asset.labels or {}).items()}
    labels.update({label_name(k): str(v) for k, v in (series.labels or {}).items() if label_name(k) not in RESERVED})
    labels.update({"asset": asset.name, "asset_id": str(asset.id), "engine": asset.engine or ""})
    return labels


class _LatestValues:
    def __init__(self, rows, redactor: LabelRedactor):
        self.rows, self.redactor = rows, redactor

    def collect(self):
        families: dict[str, Metric] = {}
        for series, asset in self.rows:
            name = metric_name(series.name)
            family = families.setdefault(name, Metric(name, f"dbmon metric {series.name}", "gauge"))
            family.add_sample(name, _labels(series, asset, self.redactor), series.last_value)
        return list(families.values())


def latest_exposition(session, now: datetime, stale_after: timedelta, redactor: LabelRedactor) -> bytes:
    rows = session.execute(select(MetricSeries, Asset).join(Asset, Asset.id == MetricSeries.asset_id).where(
        MetricSeries.last_at >= now - stale_after).order_by(MetricSeries.name, MetricSeries.id)).all()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LatestValues(rows, redactor))
    return generate_latest(registry)
