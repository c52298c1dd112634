"""Rule kinds that judge a series against its own history rather than a fixed number:
`anomaly` (far from its baseline, in robust sigmas), `baseline` (a multiple of its baseline) and
`forecast` (reaches a threshold within a lead time). Evaluated by `series_rules.py`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from monitor_app.alerting.rule_fields import Duration, Matchers, RuleBase
from monitor_app.analysis.anomaly_detector import SENSITIVITY
from monitor_app.analysis.forecast import CYCLE_AWARE
from monitor_app.config.section import ConfigSection

Direction = Literal["up", "down", "both"]


def _sensitivity(value: Any) -> float:
    if isinstance(value, str) and value in SENSITIVITY:
        return SENSITIVITY[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1.0 <= value <= 50.0:
        raise ValueError("expected low, medium, high or a score between 1 and 50 (robust sigmas)")
    return float(value)


def _series_list(value: Any) -> Any:
    if isinstance(value, str):
        return [{"metric": value}]
    if isinstance(value, list):
        return [{"metric": v} if isinstance(v, str) else v for v in value]
    return value


class SeriesSpec(ConfigSection):
    """One metric a rule watches; unset fields take the rule's."""

    metric: str = Field(min_length=1, max_length=128)
    direction: Direction | None = None
    min_effect: float | None = Field(None, ge=0)
    sample_match: Matchers = Field(default_factory=list, description="Matchers on the series' own labels.")


SeriesList = Annotated[list[SeriesSpec], BeforeValidator(_series_list), Field(min_length=1, max_length=32)]


class _SeriesRule(RuleBase):
    series: SeriesList = Field(description="Metric names, or objects with metric, direction, min_effect.")
    min_effect: float = Field(0.0, ge=0, description="Smallest distance from the baseline that counts, "
                                                     "in the metric's unit.")
    for_: Duration = Field(300.0, alias="for", description="Persistence: 80 % of the steps in this span must breach.")
    group: Literal["series", "asset"] = Field(
        "series", description="series: an alert per series; asset: one per asset while any series is off.")
    stale_after: Duration = Field(600.0, description="A series silent this long is not judged.")
    adapt_after: Duration = Field(21600.0, description="An anomaly lasting this long becomes the new normal.")

    @field_validator("for_")
    @classmethod
    def _for_in_steps(cls, value: float) -> float:
        if not 60.0 <= value <= 86400.0:
            raise ValueError("between 1m and 24h: the series are judged in one-minute steps")
        return value


class AnomalyRule(_SeriesRule):
    kind: Literal["anomaly"] = "anomaly"
    direction: Direction = "both"
    sensitivity: Annotated[float, BeforeValidator(_sensitivity)] = Field(
        SENSITIVITY["medium"], description="low (6), medium (4.5), high (3.5) or a score in robust sigmas.")


class BaselineRule(_SeriesRule):
    kind: Literal["baseline"] = "baseline"
    op: Literal[">", "<"] = ">"
    factor: float = Field(gt=0, description="e.g. 3 with op '>': above three times the baseline.")

    @model_validator(mode="after")
    def _factor_side(self):
        if (self.op == ">") != (self.factor > 1):
            raise ValueError("op '>' needs a factor above 1, op '<' one below 1")
        return self


class ForecastRule(RuleBase):
    kind: Literal["forecast"] = "forecast"
    metric: str = Field(min_length=1, max_length=128)
    sample_match: Matchers = Field(default_factory=list)
    threshold: float
    direction: Literal["up", "down"] = Field("up", description="up: a limit reached from below (a disk filling); "
                                                               "down: from above (free space running out).")
    lead_time: Duration = Field(description="Fire while the threshold is due within this long.")
    window: Duration = Field(86400.0, description="Trend window; should span a workload cycle.")
    min_history: Duration | None = Field(None, description="History needed before forecasting "
                                                           "(default 1.25 windows, so the cycle is seen whole).")
    release: float = Field(1.5, ge=1.0, le=10.0, description="Resolve once the ETA is beyond lead_time x this.")
    stale_after: Duration = Field(900.0)

    @field_validator("window")
    @classmethod
    def _window_range(cls, value: float) -> float:
        if not 3600.0 <= value <= 30 * 86400.0:
            raise ValueError("between 1h and 30d")
        return value

    @property
    def history_needed(self) -> float:
        return self.min_history if self.min_history is not None else CYCLE_AWARE * self.window
