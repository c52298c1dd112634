"""The routing tree: the root takes every alert; children are tried in order and the
first that matches wins unless it says `continue`. Settings not given on a route are
inherited from its parent. The result is frozen onto the incident when it opens."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

from monitor_app.alerting.config import AlertingConfig, Route
from monitor_app.alerting.matchers import all_match

DEFAULT_GROUP_BY = ["asset", "alertname"]
DEFAULTS = {"group_wait": 0.0, "group_interval": 30.0, "repeat_interval": 4 * 3600.0}


@dataclass
class RouteDecision:
    path: str
    channels: list[str] = field(default_factory=list)
    group_by: list[str] = field(default_factory=lambda: list(DEFAULT_GROUP_BY))
    group_wait: float = DEFAULTS["group_wait"]
    group_interval: float = DEFAULTS["group_interval"]
    repeat_interval: float = DEFAULTS["repeat_interval"]
    escalation: str | None = None

    def group_key(self, labels: Mapping[str, object]) -> str:
        parts = ",".join(f"{name}={labels.get(name, '')}" for name in self.group_by)
        return f"{self.path}|{parts}"

    def group_labels(self, labels: Mapping[str, object]) -> dict[str, str]:
        return {name: str(labels.get(name, "")) for name in self.group_by}

    def to_dict(self) -> dict:
        return asdict(self)


def _inherit(parent: RouteDecision, route: Route, path: str) -> RouteDecision:
    return RouteDecision(
        path=path,
        channels=list(route.channels) or list(parent.channels),
        group_by=list(route.group_by) if route.group_by is not None else list(parent.group_by),
        group_wait=route.group_wait if route.group_wait is not None else parent.group_wait,
        group_interval=route.group_interval if route.group_interval is not None else parent.group_interval,
        repeat_interval=route.repeat_interval if route.repeat_interval is not None else parent.repeat_interval,
        escalation=route.escalation or parent.escalation,
    )


def _walk(route: Route, here: RouteDecision, labels: Mapping[str, object], out: list[RouteDecision]) -> None:
    matched_child = False
    for i, child in enumerate(route.routes):
        if not all_match(child.matchers, labels):
            continue
        matched_child = True
        _walk(child, _inherit(here, child, f"{here.path}.{i}"), labels, out)
        if not child.continue_:
            break
    if not matched_child:
        out.append(here)


def decide(cfg: AlertingConfig, labels: Mapping[str, object]) -> RouteDecision:
    """The first matching leaf gives timing and grouping; channels are the union of all matches."""
    root = _inherit(RouteDecision(path="root"), cfg.route, "root")
    leaves: list[RouteDecision] = []
    _walk(cfg.route, root, labels, leaves)
    decision = leaves[0]
    for leaf in leaves[1:]:
        decision.channels += [c for c in leaf.channels if c not in decision.channels]
    if decision.escalation is None:
        severity = str(labels.get("severity", ""))
        for name, policy in cfg.escalation_policies.items():
            if severity in policy.severities:
                decision.escalation = name
                break
    return decision
