"""What the asset page shows, built as plain values so the template only lays them out.

The page is one store session: the asset, its series and their chart data over the picked range
(`chart_data`, with anomaly windows and forecasts from `chart_overlays`), its schema, file and
lifecycle history (`asset_history`) and its alerts and incidents. The charts' JSON endpoint
(`charts_payload`) builds the same chart dicts, so a chart redrawn for another range in the
browser is exactly what a reload would have shown.

Label values on the deny-list are redacted as the API redacts them; the connection shown is the
stored one, which never holds a password.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.alerting.views import alert_dict, incident_dict
from monitor_app.errors import NotFound
from monitor_app.status.asset_history import file_activity, lifecycle_events, schema_timeline
from monitor_app.status.chart_catalogue import ChartSpec, default_specs, spec_for
from monitor_app.status.chart_data import RANGES, ChartRange, SeriesRef, asset_series, read_charts
from monitor_app.status.chart_overlays import add_overlays, forecast_rules
from monitor_app.status.shown_text import shown
from monitor_app.store.models import Asset
from monitor_app.store.models.alerting import Alert, Incident

MAX_EXTRA_CHARTS = 8
ALERTS = 30
INCIDENTS = 20
CONNECTION_FIELDS = ("host", "port", "database", "path", "user", "sslmode")


def asset_header(asset: Asset, redactor: LabelRedactor) -> dict:
    labels = redactor.labels(asset.labels or {})
    connection = asset.connection if isinstance(asset.connection, dict) else {}
    return {"id": asset.id, "name": shown(asset.name, 255), "kind": shown(asset.kind, 32),
            "engine": shown(asset.engine, 32), "source": shown(asset.source, 32), "status": shown(asset.status, 16),
            "status_changed_at": asset.status_changed_at, "last_checked_at": asset.last_checked_at,
            "created_at": asset.created_at, "gone_at": asset.gone_at,
            "labels": [(shown(k, 80), shown(v, 200)) for k, v in sorted(labels.items(), key=lambda kv: str(kv[0]))][:30],
            "connection": [(f, shown(connection[f], 200)) for f in CONNECTION_FIELDS if connection.get(f) not in (None, "")]}


def chart_specs(refs: list[SeriesRef], extra_metrics: list[str]) -> tuple[list[ChartSpec], list[str]]:
    """The default charts the asset has series for, then the extra ones asked for (existing ones
    only, at most MAX_EXTRA_CHARTS); and the metric names not charted, for the selector."""
    names = {r.name for r in refs}
    specs = default_specs(names)
    charted = {s.metric for s in specs}
    extras = [m for m in dict.fromkeys(extra_metrics) if m in names and m not in charted][:MAX_EXTRA_CHARTS]
    specs += [spec_for(m) for m in extras]
    return specs, sorted(names - charted - set(extras))


def _charts(session: Session, asset: Asset, specs: list[ChartSpec], refs: list[SeriesRef], rng: ChartRange,
            now: datetime, rules: list) -> list[dict]:
    charts = read_charts(session, specs, refs, rng, now)
    add_overlays(session, charts, refs, forecast_rules(rules, asset), now, rng.span)
    return charts


def charts_payload(session: Session, asset_id: int, metrics: list[str], rng: ChartRange, now: datetime,
                   redactor: LabelRedactor, rules: list) -> dict:
    """The charts of `metrics` for the page's JSON endpoint; NotFound for an unknown asset or a
    metric the asset has no series of."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound(f"no asset {asset_id}", field="asset_id")
    refs = asset_series(session, asset_id, redactor)
    names = {r.name for r in refs}
    missing = [m for m in metrics if m not in names]
    if missing:
        raise NotFound(f"asset {asset_id} has no series named {shown(missing[0], 128)}", field="metric")
    specs = [spec_for(m) for m in dict.fromkeys(metrics)]
    return {"asset_id": asset_id, "range": rng.key, "range_label": rng.label,
            "charts": _charts(session, asset, specs, refs, rng, now, rules)}


def alerts_and_incidents(session: Session, asset_id: int, redactor: LabelRedactor) -> dict:
    """The asset's alerts (firing and pending first) and the incidents they belong to (open first)."""
    active_first = case((Alert.state == "firing", 0), (Alert.state == "pending", 1), else_=2)
    alerts = session.scalars(select(Alert).where(Alert.asset_id == asset_id)
                             .order_by(active_first, Alert.last_seen_at.desc(), Alert.id.desc()).limit(ALERTS)).all()
    shown_alerts = []
    for a in alerts:
        d = redactor.within(alert_dict(a))
        annotations = d["annotations"] if isinstance(d["annotations"], dict) else {}
        shown_alerts.append({"id": a.id, "rule": shown(d["rule"], 128), "state": shown(d["state"], 16),
                             "severity": shown(d["severity"], 16), "value": d["value"],
                             "summary": shown(annotations.get("summary") or d["rule"], 400),
                             "starts_at": a.starts_at, "last_seen_at": a.last_seen_at, "resolved_at": a.resolved_at,
                             "incident_id": a.incident_id, "silenced": a.silenced, "inhibited": a.inhibited,
                             "flapping": a.flapping})
    incident_ids = {a.incident_id for a in alerts if a.incident_id is not None}
    open_first = case((Incident.status == "open", 0), (Incident.status == "acknowledged", 1), else_=2)
    incidents = session.scalars(select(Incident).where(Incident.id.in_(incident_ids))
                                .order_by(open_first, Incident.opened_at.desc()).limit(INCIDENTS)).all() \
        if incident_ids else []
    shown_incidents = []
    for i in incidents:
        d = incident_dict(i)
        shown_incidents.append({"id": i.id, "title": shown(d["title"] or f"incident {i.id}", 300),
                                "severity": shown(d["severity"], 16), "status": shown(d["status"], 16),
                                "opened_at": i.opened_at, "acknowledged_by": shown(d["acknowledged_by"], 128),
                                "resolved_at": i.resolved_at})
    return {"alerts": shown_alerts, "incidents": shown_incidents}


def asset_page(session: Session, asset_id: int, *, rng: ChartRange, extra_metrics: list[str], now: datetime,
               redactor: LabelRedactor, rules: list) -> dict | None:
    """Everything the asset page shows; None when there is no such asset."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        return None
    refs = asset_series(session, asset_id, redactor)
    specs, other_metrics = chart_specs(refs, extra_metrics)
    charts = _charts(session, asset, specs, refs, rng, now, rules)
    defaults = {s.metric for s in default_specs({r.name for r in refs})}
    return {"asset": asset_header(asset, redactor), "range": rng, "ranges": list(RANGES.values()), "charts": charts,
            "extra_metrics": [c["metric"] for c in charts if c["metric"] not in defaults],
            "other_metrics": other_metrics, "series_count": len(refs),
            "schema": schema_timeline(session, asset_id), "files": file_activity(session, asset_id),
            "lifecycle": lifecycle_events(session, asset_id), **alerts_and_incidents(session, asset_id, redactor)}
