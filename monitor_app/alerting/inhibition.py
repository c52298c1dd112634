"""Inhibition: while a source alert fires (an asset is down), matching target alerts
(that asset's metric and schema alerts) do not notify. `equal` names the labels that must
agree between source and target, usually `asset`."""

from __future__ import annotations

from typing import Iterable, Mapping

from monitor_app.alerting.config import InhibitRule
from monitor_app.alerting.matchers import all_match


def inhibits(rule: InhibitRule, source: Mapping[str, object], target: Mapping[str, object]) -> bool:
    return (all_match(rule.target_matchers, target) and all_match(rule.source_matchers, source)
            and all(source.get(name) == target.get(name) for name in rule.equal))


def is_inhibited(rules: list[InhibitRule], target: Mapping[str, object],
                 firing: Iterable[Mapping[str, object]]) -> bool:
    candidates = [r for r in rules if all_match(r.target_matchers, target)]
    if not candidates:
        return False
    for source in firing:
        if source is target or dict(source) == dict(target):
            continue  # an alert never inhibits itself
        if any(inhibits(rule, source, target) for rule in candidates):
            return True
    return False


def is_source(rules: list[InhibitRule], labels: Mapping[str, object]) -> bool:
    return any(all_match(r.source_matchers, labels) for r in rules)
