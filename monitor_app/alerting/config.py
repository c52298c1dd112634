"""The `alerting:` section of the config file, and API-defined rules, as pydantic models.

`load_alerting_config` turns any validation failure into a ConfigError whose pairs name
the field path (`alerting.rules.2.for: ...`), including cross-references such as a route
naming a channel that does not exist.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, WrapValidator, Field, ValidationError,
                      field_validator)
from pydantic import PrivateAttr, TypeAdapter, model_validator

from pydantic_core import InitErrorDetails, PydanticCustomError

from monitor_app.alerting.default_rules import builtin_definitions
from monitor_app.alerting.rule_fields import MAX_DURATION, Duration, Matchers, RuleBase, parse_duration  # noqa: F401
from monitor_app.alerting.series_rule_config import AnomalyRule, BaselineRule, ForecastRule
from monitor_app.config.section import ConfigSection, validation_errors
from monitor_app.errors import ConfigError
from monitor_app.platform.vocabulary import Risk, Severity

_PAYLOAD_PATH = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")


class ThresholdRule(RuleBase):
    kind: Literal["threshold"] = "threshold"
    metric: str = Field(min_length=1)
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    value: float
    for_: Duration = Field(0.0, alias="for")
    sample_match: Matchers = Field(default_factory=list, description="Matchers on the sample's own labels.")
    stale_after: Duration = Field(300.0, description="Samples older than this count as no data.")

    def breached(self, observed: float) -> bool:
        v = self.value
        return {">": observed > v, ">=": observed >= v, "<": observed < v, "<=": observed <= v,
                "==": observed == v, "!=": observed != v}[self.op]


class EventRule(RuleBase):
    kind: Literal["event"] = "event"
    event_types: list[str] = Field(min_length=1, description="Event type globs, e.g. asset.down or schema.*")
    min_event_severity: Severity | None = None
    min_risk: Risk | None = None
    payload_match: dict[str, str | int | float | bool] = Field(default_factory=dict)
    for_each: str | None = Field(None, description="Dotted path of a payload list: one alert per item; "
                                                   "label_from_payload and min_risk then read each item.")
    label_from_payload: list[str] = Field(default_factory=list, validate_default=True,
                                          description="Payload keys copied into labels.")
    resolve_on: list[str] = Field(default_factory=list, description="Event type globs that clear the alert.")
    resolve_after: Duration | None = Field(None, description="Clear when no new matching event for this long.")

    @field_validator("for_each")
    @classmethod
    def _for_each_path(cls, value: str | None) -> str | None:
        if value is not None and not _PAYLOAD_PATH.fullmatch(value):
            raise ValueError(f"{value[:64]!r} is not a payload path; expected keys joined by dots, e.g. changes")
        return value

    @field_validator("label_from_payload")
    @classmethod
    def _fan_out_labels(cls, value: list[str], info) -> list[str]:
        # Without a label per item every item has the same label set: one alert, the fan-out lost.
        if info.data.get("for_each") and not value:
            raise ValueError("for_each needs at least one key here to tell the items' alerts apart, e.g. [object]")
        return value


def _untagged(value: Any, handler):
    """Drop the union tag pydantic puts into error locations (`rules[0].threshold.for`)
    so errors name the path the user wrote (`rules[0].for`)."""
    try:
        return handler(value)
    except ValidationError as exc:
        raise ValidationError.from_exception_data(exc.title, [
            InitErrorDetails(type=PydanticCustomError(err["type"], err["msg"].removeprefix("Value error, ")),
                             loc=tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _TAGS)),
                             input=err.get("input"))
            for err in exc.errors()]) from None


_TAGS = {"threshold", "event", "anomaly", "baseline", "forecast", "webhook", "slack", "email", "apprise"}

Rule = Annotated[Annotated[ThresholdRule | EventRule | AnomalyRule | BaselineRule | ForecastRule, Field(discriminator="kind")],
                 WrapValidator(_untagged)]


class RateLimit(ConfigSection):
    per_minute: float = Field(gt=0)
    burst: int = Field(5, ge=1)


class _ChannelBase(ConfigSection):
    send_resolved: bool = True
    rate_limit: RateLimit | None = None
    timeout: Duration = 10.0


class _HttpChannel(_ChannelBase):
    allow_private_targets: bool = Field(False, description="Connect to loopback, private and link-local "
                                                           "addresses (refused by default).")


class WebhookChannel(_HttpChannel):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(None, description="HMAC-SHA256 key for the X-Dbmon-Signature header.")
    headers: dict[str, str] = Field(default_factory=dict)


class SlackChannel(_HttpChannel):
    type: Literal["slack"]
    webhook_url: str | None = Field(None, pattern=r"^https?://")
    base_url: str = Field("https://hooks.slack.com", pattern=r"^https?://")
    path: str | None = Field(None, description="Incoming-webhook path under base_url, e.g. /services/T/B/X.")

    @property
    def url(self) -> str:
        if self.webhook_url:
            return self.webhook_url
        return self.base_url.rstrip("/") + "/" + (self.path or "").lstrip("/")


class EmailChannel(_ChannelBase):
    type: Literal["email"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    require_tls: bool = Field(True, description="Refuse to send if STARTTLS is not offered.")
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    verify_tls: bool = True
    ca_file: str | None = Field(None, description="CA bundle to trust for the server certificate.")


class AppriseChannel(_HttpChannel):
    type: Literal["apprise"]
    urls: list[str] = Field(min_length=1)


Channel = Annotated[Annotated[WebhookChannel | SlackChannel | EmailChannel | AppriseChannel,
                              Field(discriminator="type")], WrapValidator(_untagged)]


class Route(ConfigSection):
    matchers: Matchers = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: Duration | None = Field(None, description="Delay of an incident's first notification (default 0).")
    group_interval: Duration | None = Field(None, description="Batch window for alerts joining an incident.")
    repeat_interval: Duration | None = None
    escalation: str | None = None
    continue_: bool = Field(False, alias="continue")
    routes: list["Route"] = Field(default_factory=list)


class EscalationStep(ConfigSection):
    after: Duration = Field(description="Wait since the previous step (or since the incident opened).")
    channels: list[str] = Field(min_length=1)


class EscalationPolicy(ConfigSection):
    steps: list[EscalationStep] = Field(min_length=1)
    repeat: int = Field(0, ge=0, le=100, description="Run the whole list this many more times.")
    severities: list[Severity] = Field(default_factory=list, description="Default policy for these severities.")


class InhibitRule(ConfigSection):
    source_matchers: Matchers
    target_matchers: Matchers
    equal: list[str] = Field(default_factory=list)


class SilenceSpec(ConfigSection):
    matchers: Matchers = Field(min_length=1)
    starts_at: datetime | None = None
    ends_at: datetime
    created_by: str = "config"
    comment: str = ""


class FlapSettings(ConfigSection):
    window: Duration = 600.0
    transitions: int = Field(4, ge=2, description="State changes within the window that mark an alert flapping.")
    hold: Duration = Field(600.0, description="Quiet time before a flapping alert notifies again.")


class OutboxSettings(ConfigSection):
    backoff_base: Duration = 2.0
    backoff_max: Duration = 300.0
    give_up_after: Duration = 86400.0
    lease: Duration = Field(60.0, description="A row being sent by a worker that died is retried after this.")
    redispatch_after: Duration = Field(30.0, description="A due row whose task was lost is handed out again after this.")


def _builtin_name(name: str) -> str:
    if name not in builtin_definitions():
        raise ValueError(f"no built-in rule named {name!r} (built-in: {', '.join(builtin_definitions())})")
    return name


def _overridden(overrides: dict[str, dict]) -> dict[str, dict]:
    """Each override merged into its built-in definition and validated as a rule; errors carry
    the override's path (`override.<Rule>.<field>`)."""
    builtins, details = builtin_definitions(), []
    for name, fields in overrides.items():
        if name not in builtins:
            details.append(InitErrorDetails(type=PydanticCustomError("unknown_rule", "no built-in rule named {name}",
                                                                     {"name": repr(name)}), loc=(name,), input=name))
        elif "name" in fields:
            details.append(InitErrorDetails(type=PydanticCustomError(
                "fixed_name", "the name of a built-in rule cannot be overridden; disable it and add your own rule"),
                loc=(name, "name"), input=fields["name"]))
        else:
            try:
                TypeAdapter(Rule).validate_python({**builtins[name], **fields})
            except ValidationError as exc:
                details += [InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"].removeprefix("Value error, ")),
                                             loc=(name, *e["loc"]), input=e.get("input")) for e in exc.errors()]
    if details:
        raise ValidationError.from_exception_data("override", details)
    return overrides


class DefaultRules(ConfigSection):
    """The built-in rule pack (monitor_app/alerting/default_rules.yaml) and how this config changes it."""

    enabled: bool = Field(True, description="false: none of the built-in rules.")
    disable: list[Annotated[str, AfterValidator(_builtin_name)]] = Field(default_factory=list)
    override: Annotated[dict[str, dict[str, Any]], WrapValidator(lambda v, h: _overridden(h(v)))] = Field(
        default_factory=dict, description="Built-in rule name -> fields that replace the built-in ones.")

    def rules(self) -> list:
        if not self.enabled:
            return []
        return [TypeAdapter(Rule).validate_python({**definition, **self.override.get(name, {})})
                for name, definition in builtin_definitions().items() if name not in self.disable]


class AlertingConfig(ConfigSection):
    rules: list[Rule] = Field(default_factory=list)
    channels: dict[str, Channel] = Field(default_factory=dict)
    route: Route = Field(default_factory=Route)
    escalation_policies: dict[str, EscalationPolicy] = Field(default_factory=dict)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    silences: list[SilenceSpec] = Field(default_factory=list)
    flap: FlapSettings = Field(default_factory=FlapSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    template_dir: Path | None = Field(None, description="Templates here override the built-in ones.")
    public_url: str | None = Field(None, description="Base of acknowledge links; default: the API's own address, "
                                                     "https when DBMON_API_TLS_CERT is set.")
    ack_link_max_age: Duration = 7 * 86400.0
    default_rules: DefaultRules = Field(default_factory=DefaultRules)
    _builtin_names: set[str] = PrivateAttr(default_factory=set)

    @model_validator(mode="after")
    def _merge_default_rules(self) -> "AlertingConfig":
        # Built-ins go after the user's rules, so error paths like rules[1] still point into the file.
        own = {r.name for r in self.rules}
        added = [r for r in self.default_rules.rules() if r.name not in own]
        self.rules = [*self.rules, *added]
        self._builtin_names = {r.name for r in added}
        return self

    def builtin_rule_names(self) -> set[str]:
        """Rules in `rules` that come from the built-in pack, not from the config file."""
        return set(self._builtin_names)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        # Links are opened by people from mail and chat: only a web address makes sense, and the
        # scheme is kept as written (https behind a TLS proxy even when dbmon serves http).
        from urllib.parse import urlsplit

        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value


def _route_refs(route: Route, path: str, cfg: AlertingConfig, errors: list) -> None:
    for i, name in enumerate(route.channels):
        if name not in cfg.channels:
            errors.append((f"{path}.channels[{i}]", f"unknown channel {name!r}"))
    if route.escalation and route.escalation not in cfg.escalation_policies:
        errors.append((f"{path}.escalation", f"unknown escalation policy {route.escalation!r}"))
    for i, child in enumerate(route.routes):
        _route_refs(child, f"{path}.routes[{i}]", cfg, errors)


def cross_reference_errors(cfg: AlertingConfig, prefix: str = "alerting") -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(cfg.rules):
        if rule.name in seen:
            errors.append((f"{prefix}.rules[{i}].name",
                           f"duplicate rule name {rule.name!r} (also rules[{seen[rule.name]}])"))
        seen.setdefault(rule.name, i)
    _route_refs(cfg.route, f"{prefix}.route", cfg, errors)
    for name, policy in cfg.escalation_policies.items():
        for si, step in enumerate(policy.steps):
            for ci, ch in enumerate(step.channels):
                if ch not in cfg.channels:
                    errors.append((f"{prefix}.escalation_policies.{name}.steps[{si}].channels[{ci}]",
                                   f"unknown channel {ch!r}"))
    return errors


def _checked(cfg: AlertingConfig) -> AlertingConfig:
    errors = cross_reference_errors(cfg, prefix="")
    if errors:
        raise ValueError("; ".join(f"{path.lstrip('.')}: {msg}" for path, msg in errors))
    return cfg


# The field type for the config file's `alerting:` section: references checked too.
AlertingSection = Annotated[AlertingConfig, AfterValidator(_checked)]


def load_alerting_config(data: Any, prefix: str = "alerting") -> AlertingConfig:
    if isinstance(data, AlertingConfig):
        cfg = data
    else:
        try:
            cfg = AlertingConfig.model_validate(data or {})
        except ValidationError as exc:
            raise ConfigError(validation_errors(exc, prefix)) from None
    errors = cross_reference_errors(cfg, prefix)
    if errors:
        raise ConfigError(errors)
    return cfg


def load_rule(data: Any, prefix: str = "rule") -> ThresholdRule | EventRule | AnomalyRule | BaselineRule | ForecastRule:
    """One rule from the API body, errors named by field."""
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(Rule).validate_python(data)
    except ValidationError as exc:
        raise ConfigError(validation_errors(exc, prefix), "rule") from None
