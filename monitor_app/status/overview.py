"""What the status page shows, gathered in one place so the template stays dumb."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.platform.collector_health import as_dict, health_rows
from monitor_app.store.models import Asset, Event, MetricSample

HOST_CHARTS = (("host.cpu_percent", "CPU %"), ("host.memory_percent", "Memory %"), ("host.disk_percent", "Disk %"))


def sparkline(values: list[float], width: int = 240, height: int = 40, top: float | None = None) -> str:
    """SVG polyline points for values oldest-first, scaled to [0, top]."""
    if not values:
        return ""
    top = top or max(max(values), 1e-9)
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - min(v, top) / top * height:.1f}" for i, v in enumerate(values))


def status_overview(session: Session, *, detailed: bool = True, events: int = 25, points: int = 60) -> dict:
    """Without `detailed` (the public page by default) only the counts per status: asset names,
    endpoints, event text and host figures tell an outsider what to attack and when."""
    assets = session.scalars(select(Asset).where(Asset.status != "gone").order_by(Asset.kind, Asset.name)).all()
    counts: dict[str, int] = {}
    for a in assets:
        counts[a.status] = counts.get(a.status, 0) + 1
    overall = "down" if counts.get("down") else ("up" if counts.get("up") else "unknown")
    failing = health_rows(session, failing_only=True)
    if not detailed:
        return {"assets": [], "counts": counts, "events": [], "charts": [], "overall": overall, "detailed": False,
                "failing_collectors": [], "failing_count": len(failing)}
    recent = session.scalars(select(Event).order_by(Event.id.desc()).limit(events)).all()
    charts = []
    for name, title in HOST_CHARTS:
        rows = session.scalars(select(MetricSample).where(MetricSample.name == name)
                               .order_by(MetricSample.at.desc(), MetricSample.id.desc()).limit(points)).all()
        values = [r.value for r in reversed(rows)]
        charts.append({"name": name, "title": title, "latest": values[-1] if values else None,
                       "points": sparkline(values, top=100.0), "count": len(values)})
    names = {a.id: a.name for a in assets}
    collectors = [dict(as_dict(r), asset=names.get(r.asset_id or 0, r.subject)) for r in failing]
    return {"assets": assets, "counts": counts, "events": recent, "charts": charts, "overall": overall,
            "detailed": True, "failing_collectors": collectors, "failing_count": len(failing)}
