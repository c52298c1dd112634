"""An asset's series over a picked range, downsampled for drawing, with their figures in words.

Each range has one fixed step, chosen so that a series never has more than `MAX_POINTS` buckets
(the window starts on a step boundary, so it holds at most span / step + 1 of them) and so that the
step is a whole multiple of the tier `series_query.pick_tier` reads for it: 5 s over raw samples for
an hour, 2 min over the 1-minute rollup for a day, 20 min over 10-minute buckets for a week, 1 h and
3 h over hourly ones. A step that cut rollup buckets in two would file each whole bucket under the
step it starts in, and the line would wobble with the phase.

Every chart of a page is read by one `read_series_in` call. A chart is columns, as uPlot draws them:
the step times (epoch seconds), and per series the average of each step with its min and max for a
band; min and max are left out when no step holds more than one sample (the band would be the line).
The same read gives each series' latest, min, max and average over the range, which the page prints
as the chart's text alternative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import truediv

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.metrics.rollup import floor_time
from monitor_app.metrics.series_query import Query, SeriesBuckets, read_series_in
from monitor_app.status.chart_catalogue import ChartSpec, format_value
from monitor_app.status.shown_text import shown
from monitor_app.store.models import MetricSeries

MAX_POINTS = 1000
MAX_SERIES_PER_CHART = 8  # the rest of a metric's series are counted, not drawn: 40 lines are noise
MAX_ASSET_SERIES = 5000  # a PostgreSQL asset with per-statement series can have thousands
LABEL_CHARS = 120


@dataclass(frozen=True)
class ChartRange:
    key: str
    label: str
    seconds: int
    step_seconds: int

    @property
    def span(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.step_seconds)


RANGES: dict[str, ChartRange] = {r.key: r for r in (
    ChartRange("1h", "1 hour", 3600, 5),
    ChartRange("24h", "24 hours", 86400, 120),
    ChartRange("7d", "7 days", 7 * 86400, 1200),
    ChartRange("30d", "30 days", 30 * 86400, 3600),
    ChartRange("90d", "90 days", 90 * 86400, 3 * 3600),
)}
DEFAULT_RANGE = "24h"


@dataclass(frozen=True)
class SeriesRef:
    id: int
    name: str
    labels: dict
    label: str
    last_value: float | None
    last_at: datetime | None


def window(rng: ChartRange, now: datetime) -> Query:
    return Query(floor_time(now - rng.span, rng.step), now, rng.step)


def series_label(name: str, labels: dict | None, redactor: LabelRedactor) -> str:
    if not labels:
        return name
    shown_labels = redactor.labels(labels)
    return shown(", ".join(f"{k}={shown(v, 60)}" for k, v in sorted(shown_labels.items(), key=lambda kv: str(kv[0]))),
                 LABEL_CHARS)


def asset_series(session: Session, asset_id: int, redactor: LabelRedactor) -> list[SeriesRef]:
    rows = session.execute(select(MetricSeries.id, MetricSeries.name, MetricSeries.labels, MetricSeries.last_value,
                                  MetricSeries.last_at)
                           .where(MetricSeries.asset_id == asset_id).order_by(MetricSeries.id)
                           .limit(MAX_ASSET_SERIES)).all()
    return [SeriesRef(i, name, labels or {}, series_label(name, labels, redactor), value, at)
            for i, name, labels, value, at in rows]


def drawn_series(refs: list[SeriesRef], metric: str) -> tuple[list[SeriesRef], int]:
    """The series of `metric` to draw (the largest latest values first) and how many are left out."""
    def size(r: SeriesRef) -> float | None:
        return r.last_value if r.last_value is not None and math.isfinite(r.last_value) else None

    of_metric = [r for r in refs if r.name == metric]
    of_metric.sort(key=lambda r: (size(r) is None, -(size(r) or 0.0), r.label))
    return of_metric[:MAX_SERIES_PER_CHART], max(0, len(of_metric) - MAX_SERIES_PER_CHART)


def _finite(column) -> list:
    # The sum of a column is finite exactly when every item is (short of an overflow, which only
    # sends it to the slow path): one C-level pass instead of a check per item on the usual column.
    if math.isfinite(sum(column)):
        return column if isinstance(column, list) else list(column)
    return [v if math.isfinite(v) else None for v in column]


def _series_columns(b: SeriesBuckets) -> dict:
    if b.counts and min(b.counts) > 0:
        avg = _finite(list(map(truediv, b.sums, b.counts)))
    else:
        avg = _finite([total / count if count else math.nan for total, count in zip(b.sums, b.counts, strict=True)])
    band = max(b.counts, default=0) > 1
    return {"avg": avg, "min": _finite(b.mins) if band else None, "max": _finite(b.maxs) if band else None}


def _summary(b: SeriesBuckets, unit: str) -> dict:
    """Latest, min, max and average over the range, from the buckets as read."""
    figures: dict[str, float | None] = {"latest": None, "min": None, "max": None, "avg": None}
    if b.times:
        if all(math.isfinite(sum(c)) for c in (b.mins, b.maxs, b.sums, b.lasts)):
            figures = {"latest": b.lasts[-1], "min": min(b.mins), "max": max(b.maxs),
                       "avg": sum(b.sums) / total if (total := sum(b.counts)) else None}
        else:  # a non-finite sample somewhere: leave it out of every figure
            ok = [i for i in range(len(b.times)) if all(math.isfinite(c[i]) for c in (b.mins, b.maxs, b.sums, b.lasts))]
            total = sum(b.counts[i] for i in ok)
            figures = {"latest": b.lasts[ok[-1]] if ok else None, "min": min((b.mins[i] for i in ok), default=None),
                       "max": max((b.maxs[i] for i in ok), default=None),
                       "avg": sum(b.sums[i] for i in ok) / total if total else None}
    return {**figures, "text": {k: format_value(v, unit) for k, v in figures.items()}}


def _spread(values: list | None, own: list[int], index: dict[int, int], size: int) -> list | None:
    if values is None:
        return None
    out: list = [None] * size
    for t, v in zip(own, values, strict=True):
        out[index[t]] = v
    return out


def build_chart(spec: ChartSpec, drawn: list[SeriesRef], hidden: int, found: dict[int, SeriesBuckets],
                rng: ChartRange, q: Query, tier: str) -> dict:
    """One chart's payload: shared step times, and per series its columns and figures."""
    own_times = {r.id: found[r.id].times for r in drawn}
    times_ms = own_times[drawn[0].id] if drawn else []
    # Series of one metric are usually sampled together and share their steps; when they do not,
    # each is spread over the union of steps with nulls where it has none.
    aligned = all(t == times_ms for t in own_times.values())
    if not aligned:
        times_ms = sorted(set().union(*own_times.values()))
        index = {t: i for i, t in enumerate(times_ms)}
    series = []
    for r in drawn:
        c = _series_columns(found[r.id])
        if aligned:
            avg, lo, hi = c["avg"], c["min"], c["max"]
        else:
            avg, lo, hi = (_spread(c[k], own_times[r.id], index, len(times_ms)) for k in ("avg", "min", "max"))
        series.append({"id": r.id, "label": r.label, "avg": avg, "min": lo, "max": hi,
                       "summary": _summary(found[r.id], spec.unit)})
    return {"metric": spec.metric, "title": spec.title, "unit": spec.unit, "group": spec.group,
            "range": rng.key, "range_label": rng.label, "start": int(q.start.timestamp()),
            "end": int(q.end.timestamp()), "step": rng.step_seconds, "tier": tier,
            "times": [t // 1000 for t in times_ms], "points": len(times_ms), "series": series,
            "hidden_series": hidden, "anomalies": [], "forecasts": []}


def read_charts(session: Session, specs: list[ChartSpec], refs: list[SeriesRef], rng: ChartRange,
                now: datetime) -> list[dict]:
    """Every chart of `specs` over `rng`, from one range query over all their series."""
    picked = {spec.metric: drawn_series(refs, spec.metric) for spec in specs}
    ids = [r.id for drawn, _ in picked.values() for r in drawn]
    q = window(rng, now)
    if ids:
        tier, found = read_series_in(session, ids, q, now)
        tier_name = tier.name
    else:
        tier_name, found = "", {}
    return [build_chart(spec, *picked[spec.metric], found, rng, q, tier_name) for spec in specs]
