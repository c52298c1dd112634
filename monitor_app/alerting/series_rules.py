"""Signals of the rules that judge a series by its own history: `anomaly`, `baseline`, `forecast`.

Alerts carry their evidence (baseline, value, score, since; or ETA, slope, level) in annotations,
so the page, the webhook and the API all say why without a second lookup.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.alerting.matchers import all_match
from monitor_app.alerting.rules import Signal, asset_selected, base_labels, string_labels
from monitor_app.alerting.series_rule_config import AnomalyRule, BaselineRule, ForecastRule
from monitor_app.analysis import series_watch
from monitor_app.analysis.anomaly_detector import DetectorSettings
from monitor_app.analysis.series_forecast import bucket_seconds, stored_forecast
from monitor_app.store.base import from_epoch
from monitor_app.store.models import Asset, MetricSeries
from monitor_app.store.models.analysis import MetricAnomaly, SeriesDetectorState

SERIES_RULES = (AnomalyRule, BaselineRule, ForecastRule)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else from_epoch(epoch).isoformat(timespec="seconds")


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _series(session: Session, rule, metrics: list[str], now: datetime, assets: dict[int, Asset],
            sample_match_for) -> list[MetricSeries]:
    fresh_after = now - timedelta(seconds=rule.stale_after)
    rows = session.scalars(select(MetricSeries).where(MetricSeries.name.in_(metrics), MetricSeries.last_at > fresh_after)
                           .order_by(MetricSeries.id))
    out = []
    for s in rows:
        asset = assets.get(s.asset_id)
        if asset is None or not asset_selected(rule, asset):
            continue
        matchers = sample_match_for(s)
        if matchers and not all_match(matchers, string_labels(s.labels)):
            continue
        out.append(s)
    return out


def _settings(rule: AnomalyRule | BaselineRule, spec) -> DetectorSettings:
    min_effect = spec.min_effect if spec.min_effect is not None else rule.min_effect
    if isinstance(rule, BaselineRule):
        return DetectorSettings.lasting(rule.for_, direction="up" if rule.op == ">" else "down", mode="ratio",
                                        factor=rule.factor, min_effect=min_effect, adapt_after=rule.adapt_after)
    return DetectorSettings.lasting(rule.for_, direction=spec.direction or rule.direction, sensitivity=rule.sensitivity,
                                    min_effect=min_effect, adapt_after=rule.adapt_after)


def _evidence(s: MetricSeries, window: MetricAnomaly | None) -> dict[str, str]:
    if window is None:
        return {}
    return {"metric": s.name, "baseline": _g(window.baseline), "value": _g(s.last_value),
            "score": f"{window.score:.1f}", "direction": window.direction, "since": window.start.isoformat()}


def deviation_signals(session: Session, rule: AnomalyRule | BaselineRule, now: datetime,
                      assets: dict[int, Asset]) -> list[Signal]:
    """Feed the rule's detectors, then signal from the windows they keep open."""
    specs = {spec.metric: spec for spec in rule.series}
    series = _series(session, rule, list(specs), now, assets, lambda s: specs[s.name].sample_match)
    series_watch.feed(session, rule.name, series, lambda s: _settings(rule, specs[s.name]), now)
    open_now = series_watch.open_windows(session, rule.name, [s.id for s in series])
    what = "anomalous" if isinstance(rule, AnomalyRule) else "off its baseline"
    signals = []
    if rule.group == "series":
        for s in series:
            asset = assets[s.asset_id]
            labels = {**string_labels(s.labels), "metric": s.name, **base_labels(rule, asset)}
            evidence = _evidence(s, open_now.get(s.id))
            summary = (f"{s.name} on {asset.name} is {what}: {evidence['value']} against a usual "
                       f"{evidence['baseline']} (score {evidence['score']}) since {evidence['since']}") if evidence else rule.name
            signals.append(Signal(rule, labels, s.id in open_now, now, value=s.last_value, asset_id=asset.id,
                                  context={"asset": asset.name, "evidence": evidence, "default_summary": summary}))
        return signals
    by_asset: dict[int, list[MetricSeries]] = {}
    for s in series:
        by_asset.setdefault(s.asset_id, []).append(s)
    for asset_id, group in by_asset.items():
        asset = assets[asset_id]
        off = [_evidence(s, open_now[s.id]) for s in group if s.id in open_now]
        evidence = {"series": "; ".join(f"{e['metric']} {e['value']} vs {e['baseline']} ({e['direction']}, "
                                        f"score {e['score']}, since {e['since']})" for e in off)} if off else {}
        summary = f"{asset.name}: {len(off)} series {what}: {evidence.get('series', '')}" if off else rule.name
        signals.append(Signal(rule, base_labels(rule, asset), bool(off), now, asset_id=asset_id,
                              context={"asset": asset.name, "evidence": evidence, "default_summary": summary}))
    return signals


def _forecast_of(session: Session, rule: ForecastRule, s: MetricSeries, now: datetime) -> dict:
    """The series' forecast, recomputed once per bucket width (cached in its detector-state row)."""
    row = session.get(SeriesDetectorState, (rule.name, s.id))
    if row is not None and row.fed_until > now - timedelta(seconds=bucket_seconds(rule.window)):
        cached = series_watch.unpack(row.state)
        if cached is not None:
            return cached
    found, history = stored_forecast(session, s.id, rule.threshold, rule.window, now, rule.history_needed,
                                     rule.direction)
    result: dict = {"history": history}
    if found is not None:
        result.update(slope_per_hour=found.slope_per_hour, hours=found.hours_to_threshold, eta=found.eta,
                      level=found.level, method=found.method)
    if row is None:
        session.add(SeriesDetectorState(rule=rule.name, series_id=s.id, fed_until=now,
                                        state=series_watch.pack(result), updated_at=now))
    else:
        row.fed_until, row.state, row.updated_at = now, series_watch.pack(result), now
    return result


def forecast_signals(session: Session, rule: ForecastRule, now: datetime, assets: dict[int, Asset],
                     active: set[str]) -> list[Signal]:
    signals = []
    for s in _series(session, rule, [rule.metric], now, assets, lambda _s: rule.sample_match):
        asset = assets[s.asset_id]
        labels = {**string_labels(s.labels), **base_labels(rule, asset)}
        result = _forecast_of(session, rule, s, now)
        hours = result.get("hours")
        signal = Signal(rule, labels, False, now, value=s.last_value, asset_id=asset.id)
        # Hysteresis: an alert already firing holds until the ETA moves well past the lead time.
        lead = rule.lead_time * (rule.release if signal.fingerprint in active else 1.0)
        signal.firing = hours is not None and hours * 3600 <= lead
        evidence = {"eta": _iso(result.get("eta")) or "none", "hours_to_threshold": _g(hours),
                    "slope_per_hour": _g(result.get("slope_per_hour")), "level": _g(result.get("level")),
                    "threshold": _g(rule.threshold)} if "method" in result else {}
        summary = (f"{s.name} on {asset.name} reaches {rule.threshold:g} in about {hours:.1f} h "
                   f"({evidence['eta']}), growing {evidence['slope_per_hour']}/h") if signal.firing else rule.name
        signal.context = {"asset": asset.name, "evidence": evidence, "default_summary": summary}
        signals.append(signal)
    return signals


def series_rule_signals(session: Session, rules: list, now: datetime, assets: dict[int, Asset],
                        active: set[str]) -> list[Signal]:
    signals = []
    for rule in rules:
        if isinstance(rule, ForecastRule):
            signals.extend(forecast_signals(session, rule, now, assets, active))
        elif isinstance(rule, (AnomalyRule, BaselineRule)):
            signals.extend(deviation_signals(session, rule, now, assets))
    return signals
