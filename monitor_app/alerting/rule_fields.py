"""What every alert rule is made of: its common fields, and the duration and matcher types
the rule kinds and the rest of the alerting section share."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, PlainValidator, field_validator

from monitor_app.alerting.matchers import parse_matchers
from monitor_app.config.section import ConfigSection
from monitor_app.platform.vocabulary import Severity

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Durations are added to datetimes; past this a timedelta or a datetime overflows.
MAX_DURATION = 3650 * 86400.0


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like `90s`, `5m`, `1h30m`, `7d`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, (int, float)):
        seconds = float(value) if abs(value) < 1e300 else float("inf")
    else:
        text = str(value).strip().replace(" ", "")
        if not text or len(text) > 64 or _DURATION.sub("", text):
            raise ValueError(f"cannot read duration {str(value)[:64]!r}; expected e.g. 30s, 5m, 1h30m")
        seconds = sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))
    if seconds != seconds:
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError("a duration can be at most 3650d")
    return seconds


Duration = Annotated[float, PlainValidator(parse_duration)]
Matchers = Annotated[list, PlainValidator(parse_matchers), PlainSerializer(lambda ms: [str(m) for m in ms])]


class RuleBase(ConfigSection):
    name: str = Field(min_length=1, max_length=128)
    severity: Severity = "warning"
    asset: str | None = Field(None, description="Only this asset (by name).")
    match: Matchers = Field(default_factory=list, description="Asset label matchers.")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict, description="Jinja strings: summary, description, runbook.")
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name_chars(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.:\-]+", v):
            raise ValueError("use letters, digits, '_', '.', ':' or '-'")
        return v
