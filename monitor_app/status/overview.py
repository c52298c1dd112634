"""What the Overview page and the public status summary show, gathered so templates stay dumb.

The public summary (signed out) is counts and the overall state only: asset names, endpoints,
event text and host figures tell an outsider what to attack and when. The signed-in overview
adds every asset with its 90-day history, open incidents, recent changes and the host charts.
The page loads every live asset once; counts, filter options and the filter itself work on
that list, and the histories of the assets shown come from one query (status_history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.platform.collector_health import as_dict, health_rows
from monitor_app.status.asset_filter import AssetFilter, filter_options
from monitor_app.status.recent_changes import recent_changes
from monitor_app.status.status_history import History, histories
from monitor_app.store.models import Asset, Event, MetricSample
from monitor_app.store.models.alerting import Incident

HOST_CHARTS = (("host.cpu_percent", "CPU %"), ("host.memory_percent", "Memory %"), ("host.disk_percent", "Disk %"))
MAX_INCIDENTS = 20


def sparkline(values: list[float], width: int = 240, height: int = 40, top: float | None = None) -> str:
    """SVG polyline points for values oldest-first, scaled to [0, top]."""
    if not values:
        return ""
    top = top or max(max(values), 1e-9)
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - min(v, top) / top * height:.1f}" for i, v in enumerate(values))


@dataclass
class AssetRow:
    id: int
    name: str
    kind: str
    engine: str | None
    source: str
    status: str
    labels: dict
    status_changed_at: datetime | None
    last_checked_at: datetime | None
    latency_ms: float | None
    history: History | None = None


@dataclass
class Summary:
    counts: dict[str, int]
    overall: str  # down | up | unknown
    failing_count: int

    @property
    def banner(self) -> str:
        if self.overall == "down":
            return f"{self.counts.get('down', 0)} asset(s) down"
        return "All monitored assets reachable" if self.overall == "up" else "No asset checked yet"


@dataclass
class Overview:
    summary: Summary
    assets: list[AssetRow]
    filters: AssetFilter
    options: dict[str, list[str]]
    total_assets: int
    incidents: list[Incident] = field(default_factory=list)
    changes: list = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    failing_collectors: list[dict] = field(default_factory=list)
    last_event_id: int = 0


def _live_assets(session: Session) -> list[Asset]:
    return list(session.scalars(select(Asset).where(Asset.status != "gone").order_by(Asset.kind, Asset.name)))


def summarise(assets: list, failing_count: int) -> Summary:
    counts: dict[str, int] = {}
    for a in assets:
        counts[a.status] = counts.get(a.status, 0) + 1
    overall = "down" if counts.get("down") else ("up" if counts.get("up") else "unknown")
    return Summary(counts, overall, failing_count)


def public_summary(session: Session) -> Summary:
    return summarise(_live_assets(session), len(health_rows(session, failing_only=True)))


def asset_row(a: Asset, redactor: LabelRedactor) -> AssetRow:
    probe = (a.details or {}).get("probe") if isinstance(a.details, dict) else None
    latency = probe.get("latency_ms") if isinstance(probe, dict) else None
    return AssetRow(id=a.id, name=a.name, kind=a.kind, engine=a.engine, source=a.source, status=a.status,
                    labels=redactor.labels(a.labels) if isinstance(a.labels, dict) else {},
                    status_changed_at=a.status_changed_at, last_checked_at=a.last_checked_at,
                    latency_ms=latency if isinstance(latency, (int, float)) else None)


def open_incidents(session: Session, limit: int = MAX_INCIDENTS) -> list[Incident]:
    """Open before acknowledged, newest first."""
    unacknowledged_first = case((Incident.status == "open", 0), else_=1)
    return list(session.scalars(select(Incident).where(Incident.status.in_(("open", "acknowledged")))
                                .order_by(unacknowledged_first, Incident.id.desc()).limit(limit)))


def host_charts(session: Session, points: int = 60) -> list[dict]:
    charts = []
    for name, title in HOST_CHARTS:
        rows = session.scalars(select(MetricSample).where(MetricSample.name == name)
                               .order_by(MetricSample.at.desc(), MetricSample.id.desc()).limit(points)).all()
        values = [r.value for r in reversed(rows)]
        charts.append({"name": name, "title": title, "latest": values[-1] if values else None,
                       "points": sparkline(values, top=100.0), "count": len(values)})
    return charts


def overview(session: Session, *, filters: AssetFilter, redactor: LabelRedactor, now: datetime,
             with_incidents: bool = True, changes: int = 25) -> Overview:
    assets = _live_assets(session)
    failing = health_rows(session, failing_only=True)
    rows = [asset_row(a, redactor) for a in assets]
    shown = filters.apply(rows)
    shown_ids = {r.id for r in shown}
    found = histories(session, [a for a in assets if a.id in shown_ids], now)
    for row in shown:
        row.history = found.get(row.id)
    names = {a.id: a.name for a in assets}
    collectors = [dict(as_dict(r), asset=names.get(r.asset_id or 0, r.subject)) for r in failing]
    return Overview(
        summary=summarise(assets, len(failing)), assets=shown, filters=filters, options=filter_options(rows),
        total_assets=len(rows), incidents=open_incidents(session) if with_incidents else [],
        changes=recent_changes(session, names, limit=changes, asset_ids=shown_ids if filters.active else None),
        charts=host_charts(session), failing_collectors=collectors,
        last_event_id=session.scalar(select(func.max(Event.id))) or 0)
