"""Rule evaluation: events and metric samples in, signals out.

A signal says "this label set is (or is no longer) in violation"; `state.apply` turns it
into alert lifecycle changes. Evaluation reads only; it never writes.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.alerting.config import EventRule, ThresholdRule, load_rule
from monitor_app.platform.vocabulary import RISKS, SEVERITIES
from monitor_app.alerting.fingerprint import fingerprint
from monitor_app.alerting.matchers import all_match
from monitor_app.assets.lifecycle import type_names
from monitor_app.store.models.alerting import AlertRuleRow
from monitor_app.store.models.core import Asset, Event
from monitor_app.store.models.metrics import MetricSample, MetricSeries

_annotations = SandboxedEnvironment(autoescape=False)
# A `for_each` list longer than this is cut: one event must not open thousands of alerts.
MAX_ITEMS_PER_EVENT = 100


@dataclass
class Signal:
    rule: Any  # any rule kind of alerting.config.Rule
    labels: dict[str, str]
    firing: bool
    at: datetime
    value: float | None = None
    asset_id: int | None = None
    event_id: int | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def annotations(self) -> dict[str, str]:
        out = {}
        for key, text in self.rule.annotations.items():
            try:
                out[key] = _annotations.from_string(text).render(labels=self.labels, value=self.value, **self.context)
            except Exception as exc:  # a broken user template must not stop alerting
                out[key] = f"{text} (template error: {exc})"
        if "summary" not in out:
            out["summary"] = self.context.get("default_summary", self.rule.name)
        for key, value in (self.context.get("evidence") or {}).items():
            out.setdefault(key, str(value))
        return out


def asset_labels(asset: Asset | None) -> dict[str, str]:
    if asset is None:
        return {}
    labels = {str(k): str(v) for k, v in (asset.labels or {}).items() if not isinstance(v, (dict, list))}
    labels.update(asset=asset.name, asset_id=str(asset.id), asset_kind=asset.kind)
    if asset.engine:
        labels["engine"] = asset.engine
    return labels


def string_labels(labels: dict | None) -> dict[str, str]:
    """A sample's or series' labels as alert labels, which are strings."""
    return {str(k): str(v) for k, v in (labels or {}).items()}


def base_labels(rule, asset: Asset | None) -> dict[str, str]:
    return {**asset_labels(asset), **rule.labels, "alertname": rule.name, "severity": rule.severity}


def asset_selected(rule, asset: Asset | None) -> bool:
    if rule.asset and (asset is None or asset.name != rule.asset):
        return False
    return not rule.match or all_match(rule.match, asset_labels(asset))


def load_rules(session: Session, config_rules: Iterable) -> list:
    """Config rules, then enabled API rules whose names do not clash with config ones."""
    rules = [r for r in config_rules if r.enabled]
    names = {r.name for r in config_rules}
    for row in session.scalars(select(AlertRuleRow).where(AlertRuleRow.enabled.is_(True)).order_by(AlertRuleRow.id)):
        if row.name not in names:
            rules.append(load_rule(row.definition))
    return rules


# -- event rules ---------------------------------------------------------------------------

def _event_risk(payload: dict) -> int:
    # Schema change events carry `max_risk`; other sources may give `risk` or per-change risks.
    risks = [payload.get("risk"), payload.get("max_risk")] + [
        c.get("risk") for c in payload.get("changes") or [] if isinstance(c, dict)]
    ranks = [RISKS.index(r) for r in risks if r in RISKS]
    return max(ranks) if ranks else -1


def _lookup(payload: dict, path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _payload_matches(rule: EventRule, payload: dict) -> bool:
    for key, want in rule.payload_match.items():
        have = _lookup(payload, key)
        if have != want and str(have) != str(want):
            return False
    return True


def _globs(patterns: list[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _items(rule: EventRule, payload: dict) -> list[dict]:
    """What one event fans out to: the payload itself, or each item of its `for_each` list
    (a plain value becomes `{"item": value}`). A payload without that list yields nothing."""
    if not rule.for_each:
        return [payload]
    found = _lookup(payload, rule.for_each)
    if not isinstance(found, list):
        return []
    return [item if isinstance(item, dict) else {"item": item} for item in found[:MAX_ITEMS_PER_EVENT]]


def _fires(rule: EventRule, event: Event, payload: dict, item: dict) -> bool:
    if rule.min_event_severity and SEVERITIES.index(event.severity) < SEVERITIES.index(rule.min_event_severity):
        return False
    # An item without its own risk (a list of names) is as risky as its event.
    risk = _event_risk(item) if rule.for_each and _event_risk(item) >= 0 else _event_risk(payload)
    if rule.min_risk and risk < RISKS.index(rule.min_risk):
        return False
    return _payload_matches(rule, payload)


def event_signals(rule: EventRule, event: Event, asset: Asset | None) -> list[Signal]:
    """One signal per item (see `_items`), each labelled from its item."""
    if not asset_selected(rule, asset):
        return []
    names = type_names(event.type)  # an event's current name and any name it had before
    if any(_globs(rule.event_types, name) for name in names):
        firing = True
    elif rule.resolve_on and any(_globs(rule.resolve_on, name) for name in names):
        firing = False
    else:
        return []
    payload = event.payload or {}
    signals = []
    for item in _items(rule, payload):
        if firing and not _fires(rule, event, payload, item):
            continue
        labels = base_labels(rule, asset)
        for key in rule.label_from_payload:
            labels[key] = str(item.get(key, ""))
        context = {"event": {"type": event.type, "severity": event.severity, "summary": event.summary,
                             "payload": payload, "id": event.id},
                   "item": item if rule.for_each else None,
                   "asset": asset.name if asset else None, "default_summary": event.summary or rule.name}
        signals.append(Signal(rule, labels, firing, event.detected_at, asset_id=event.asset_id, event_id=event.id,
                              context=context))
    return signals


def events_signals(session: Session, rules: list, event_ids: list[int]) -> list[Signal]:
    event_rules = [r for r in rules if isinstance(r, EventRule)]
    if not event_rules or not event_ids:
        return []
    events = session.scalars(select(Event).where(Event.id.in_(event_ids)).order_by(Event.id)).all()
    asset_ids = {e.asset_id for e in events if e.asset_id is not None}
    assets = {a.id: a for a in session.scalars(select(Asset).where(Asset.id.in_(asset_ids)))} if asset_ids else {}
    signals = []
    for event in events:
        for rule in event_rules:
            signals.extend(event_signals(rule, event, assets.get(event.asset_id)))
    return signals


# -- threshold rules -----------------------------------------------------------------------

def threshold_signals(session: Session, rule: ThresholdRule, now: datetime,
                      assets: dict[int, Asset]) -> list[Signal]:
    """One signal per series (asset + sample labels) with a fresh sample; the latest sample decides.

    Samples are read from both places metrics live: per-sample rows (host samples, probe timings)
    and the series store's latest values (the database collectors)."""
    fresh_after = now - timedelta(seconds=rule.stale_after)
    rows = list(session.execute(
        select(MetricSample.asset_id, MetricSample.labels, MetricSample.value, MetricSample.at)
        .where(MetricSample.name == rule.metric, MetricSample.at > fresh_after, MetricSample.at <= now)
        .order_by(MetricSample.at, MetricSample.id)
    ).all())
    rows += session.execute(
        select(MetricSeries.asset_id, MetricSeries.labels, MetricSeries.last_value, MetricSeries.last_at)
        .where(MetricSeries.name == rule.metric, MetricSeries.last_at > fresh_after, MetricSeries.last_at <= now,
               MetricSeries.last_value.is_not(None))
    ).all()
    rows.sort(key=lambda row: row[3])  # stable: samples of one instant keep their order
    latest: dict[tuple, tuple] = {}
    for asset_id, labels, value, at in rows:
        latest[(asset_id, json.dumps(labels or {}, sort_keys=True))] = (asset_id, labels or {}, value, at)
    signals = []
    for asset_id, sample_labels, value, at in latest.values():
        asset = assets.get(asset_id) if asset_id is not None else None
        if asset_id is not None and asset is None:
            continue  # asset deleted or gone
        if not asset_selected(rule, asset):
            continue
        if rule.sample_match and not all_match(rule.sample_match, sample_labels):
            continue
        labels = {**string_labels(sample_labels), **base_labels(rule, asset)}
        summary = f"{rule.metric} {rule.op} {rule.value:g} on {asset.name if asset else 'host'} (now {value:g})"
        signals.append(Signal(rule, labels, rule.breached(value), at, value=value, asset_id=asset_id,
                              context={"asset": asset.name if asset else None, "metric": rule.metric,
                                       "threshold": rule.value, "default_summary": summary}))
    return signals


def live_assets(session: Session) -> dict[int, Asset]:
    return {a.id: a for a in session.scalars(select(Asset).where(Asset.status != "gone"))}


def metric_signals(session: Session, rules: list, now: datetime, assets: dict[int, Asset]) -> list[Signal]:
    threshold_rules = [r for r in rules if isinstance(r, ThresholdRule)]
    signals = []
    for rule in threshold_rules:
        signals.extend(threshold_signals(session, rule, now, assets))
    return signals
