"""What is drawn over a chart: the anomaly windows the series rules found, and forecast lines.

Anomaly windows are the rows `/api/v1/metrics/anomalies` serves (`anomaly_dict`), with their ends
as epoch seconds for the chart; an open window runs to the chart's end.

A forecast exists for a series when a `forecast` rule (from the config file or the API) selects
it: its metric, asset matchers and sample matchers, and the series not stale by the rule's own
`stale_after`. The line is the one `/api/v1/metrics/forecast` returns, computed by the same
`stored_forecast` with the rule's threshold, window, history and direction, from the level it
extrapolates from to the threshold at the ETA. An ETA far past the chart would squash the
range into a sliver, so the line is cut a quarter of the range beyond the chart's end (at the
value it has there); the text still gives the ETA.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from monitor_app.alerting.matchers import all_match
from monitor_app.alerting.rules import asset_selected, string_labels
from monitor_app.alerting.series_rule_config import ForecastRule
from monitor_app.analysis.series_forecast import stored_forecast
from monitor_app.metrics.views import anomaly_dict
from monitor_app.status.chart_catalogue import format_value
from monitor_app.status.chart_data import SeriesRef
from monitor_app.store.models import Asset
from monitor_app.store.models.analysis import MetricAnomaly

MAX_ANOMALIES = 200  # per page: a series flapping in and out of a window all quarter is one story
FORECAST_REACH = 0.25  # of the range, past its end


def _epoch(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def anomaly_windows(session: Session, series_ids: list[int], start: datetime, end: datetime) -> dict[int, list[dict]]:
    """Windows of these series that overlap [start, end), newest first, grouped by series."""
    if not series_ids:
        return {}
    rows = session.scalars(select(MetricAnomaly).where(
        MetricAnomaly.series_id.in_(series_ids), MetricAnomaly.start < end,
        or_(MetricAnomaly.end_at.is_(None), MetricAnomaly.end_at >= start),
    ).order_by(MetricAnomaly.start.desc(), MetricAnomaly.id.desc()).limit(MAX_ANOMALIES))
    out: dict[int, list[dict]] = {}
    for a in rows:
        out.setdefault(a.series_id, []).append({**anomaly_dict(a), "from": _epoch(a.start), "to": _epoch(a.end_at)})
    return out


def _anomaly_text(w: dict, unit: str) -> str:
    start = datetime.fromisoformat(w["start"]).strftime("%Y-%m-%d %H:%M")
    end = datetime.fromisoformat(w["end"]).strftime("%Y-%m-%d %H:%M UTC") if w["end"] else "still open"
    usual = f" against a usual {format_value(w['baseline'], unit)}" if w["baseline"] is not None else ""
    return (f"{start} to {end}: {w['direction']}, peak {format_value(w['peak'], unit)}{usual} "
            f"(score {w['score']:.1f}, rule {w['rule']})")


def _eta_text(eta: float) -> str:
    try:
        return datetime.fromtimestamp(eta, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):  # centuries away
        return "beyond the calendar"


def _hours_text(hours: float) -> str:
    if hours < 48:
        return f"{hours:.1f} h"
    if hours < 24 * 730:
        return f"{hours / 24:.0f} days"
    return f"{hours / 8766:.0f} years"


def forecast_rules(rules: list, asset: Asset) -> list[ForecastRule]:
    return [r for r in rules if isinstance(r, ForecastRule) and asset_selected(r, asset)]


def _applies(rule: ForecastRule, ref: SeriesRef, now: datetime) -> bool:
    if ref.name != rule.metric or ref.last_at is None or ref.last_at <= now - timedelta(seconds=rule.stale_after):
        return False
    return not rule.sample_match or all_match(rule.sample_match, string_labels(ref.labels))


def _line(level: float, threshold: float, eta: float, hours: float, cut_at: float) -> list[list[float]]:
    start = eta - hours * 3600
    if eta <= start:
        return []  # at the threshold already: nothing to extrapolate
    if eta <= cut_at:
        return [[int(start), level], [int(eta), threshold]]
    if cut_at <= start:
        return []
    reached = level + (threshold - level) * (cut_at - start) / (eta - start)
    return [[int(start), level], [int(cut_at), reached]]


def forecasts(session: Session, rules: list[ForecastRule], refs: list[SeriesRef], unit: str, now: datetime,
              chart_end: datetime, span: timedelta) -> dict[int, list[dict]]:
    """Each drawn series' forecasts, one per rule that selects it."""
    cut_at = (chart_end + span * FORECAST_REACH).timestamp()
    out: dict[int, list[dict]] = {}
    for rule in rules:
        for ref in refs:
            if not _applies(rule, ref, now):
                continue
            found, history = stored_forecast(session, ref.id, rule.threshold, rule.window, now, rule.history_needed,
                                             rule.direction)
            entry = {"series_id": ref.id, "rule": rule.name, "threshold": rule.threshold,
                     "history_hours": round(history / 3600, 2), "eta": None, "hours_to_threshold": None,
                     "slope_per_hour": None, "line": []}
            if found is None:
                entry["text"] = (f"{rule.name}: not enough history to forecast yet "
                                 f"({entry['history_hours']} h, needs {rule.history_needed / 3600:g} h)")
            elif found.eta is None or found.hours_to_threshold is None:
                entry.update(slope_per_hour=found.slope_per_hour)
                entry["text"] = f"{rule.name}: not heading for {format_value(rule.threshold, unit)}"
            else:
                entry.update(eta=int(found.eta), hours_to_threshold=found.hours_to_threshold,
                             slope_per_hour=found.slope_per_hour,
                             line=_line(found.level or 0.0, rule.threshold, found.eta, found.hours_to_threshold,
                                        cut_at))
                when = _eta_text(found.eta)
                entry["text"] = (f"{rule.name}: reaches {format_value(rule.threshold, unit)} in about "
                                 f"{_hours_text(found.hours_to_threshold)} ({when})")
            out.setdefault(ref.id, []).append(entry)
    return out


def add_overlays(session: Session, charts: list[dict], refs: list[SeriesRef], rules: list[ForecastRule],
                 now: datetime, span: timedelta) -> None:
    """Fill each chart's `anomalies` and `forecasts` in place."""
    drawn = [s["id"] for c in charts for s in c["series"]]
    if not charts:
        return
    by_id = {r.id: r for r in refs}
    start, end = datetime.fromtimestamp(charts[0]["start"], now.tzinfo), now
    windows = anomaly_windows(session, drawn, start, end)
    for chart in charts:
        labels = {s["id"]: s["label"] for s in chart["series"]}
        found = [{**w, "label": labels[sid], "text": _anomaly_text(w, chart["unit"])}
                 for sid in labels for w in windows.get(sid, [])]
        chart["anomalies"] = sorted(found, key=lambda w: -w["from"])  # newest first, whichever series
        chart_refs = [by_id[sid] for sid in labels]
        lines = forecasts(session, rules, chart_refs, chart["unit"], now, end, span) if rules else {}
        chart["forecasts"] = [{**f, "label": labels[sid]} for sid in labels for f in lines.get(sid, [])]
