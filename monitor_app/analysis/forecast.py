"""When will a series reach a threshold: trend over a window that spans a workload cycle.

A fit over part of a cycle sees the day's rise, not the net growth: a disk that fills by day and is
cleaned up at night would be "full by tomorrow" every morning. So the slope is the median of
`(v(t) - v(t - window)) / window` over up to `CYCLES` windows once `CYCLE_AWARE` windows of history
exist (differences a whole cycle apart, which cancel the cycle out), and a Theil-Sen line over
what there is before that: right for steady growth, fooled by a cycle it cannot see whole. The level it extrapolates from is the last window's peak carried forward by that
slope (its trough, for a series falling to a threshold): a filesystem fills up at the top of its
daily cycle, not at its average.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from statistics import median

DEFAULT_WINDOW = 86400.0
MAX_POINTS = 400  # points a fit looks at; more only costs time
CYCLE_AWARE = 1.25  # windows of history before differences a cycle apart are used
CYCLES = 7  # windows of history the differences are taken over, at most


@dataclass(frozen=True)
class Forecast:
    slope_per_hour: float | None
    hours_to_threshold: float | None
    eta: float | None  # epoch seconds
    level: float | None  # the level extrapolated from, at the last point
    method: str


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    every = len(points) / MAX_POINTS
    return [points[int(i * every)] for i in range(MAX_POINTS)]


def _at(times: list[float], values: list[float], at: float) -> float | None:
    """The series at `at`, linearly interpolated; None outside it."""
    i = bisect_left(times, at)
    if i < len(times) and times[i] == at:
        return values[i]
    if i == 0 or i == len(times):
        return None
    t0, t1 = times[i - 1], times[i]
    return values[i - 1] + (values[i] - values[i - 1]) * (at - t0) / (t1 - t0)


def _theil_sen(points: list[tuple[float, float]]) -> float | None:
    pts = _thin(points)
    if len(pts) > 120:  # pairs grow with the square; a stride keeps the fit robust and cheap
        pts = pts[::len(pts) // 120 + 1]
    slopes = [(v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(pts) for t2, v2 in pts[i + 1:] if t2 > t1]
    return median(slopes) if slopes else None


def slope(points: list[tuple[float, float]], window: float = DEFAULT_WINDOW) -> tuple[float | None, str]:
    """Per second, and how it was found."""
    if len(points) < 3:
        return None, "too-short"
    times = [t for t, _ in points]
    values = [v for _, v in points]
    last = times[-1]
    if last - times[0] >= CYCLE_AWARE * window:
        # Every difference a cycle apart over the last CYCLES cycles: one unusual day moves the median
        # little, and growth that changed weeks ago no longer counts.
        recent = _thin([p for p in points if p[0] > max(last - CYCLES * window, times[0] + window)])
        diffs = [(v - back) / window for t, v in recent if (back := _at(times, values, t - window)) is not None]
        if diffs:
            return median(diffs), "cycle-difference"
    return _theil_sen([p for p in points if p[0] > last - window]), "theil-sen"


def forecast(points: list[tuple[float, float]], threshold: float, window: float = DEFAULT_WINDOW,
             direction: str = "auto") -> Forecast:
    """Time until the series reaches `threshold`, from its last point; zero hours if it is there.

    `direction` says which side the threshold is a limit on: "up" (reached from below: a disk
    filling), "down" (from above: free space running out), or "auto": the side the last point is on."""
    per_second, method = slope(points, window)
    if per_second is None:
        return Forecast(None, None, None, None, method)
    last_t, last_v = points[-1]
    rising = threshold >= last_v if direction == "auto" else direction == "up"
    recent = [(t, v + per_second * (last_t - t)) for t, v in points if t > last_t - window] or [points[-1]]
    level = max(v for _, v in recent) if rising else min(v for _, v in recent)
    per_hour = per_second * 3600
    if (rising and level >= threshold) or (not rising and level <= threshold):
        return Forecast(per_hour, 0.0, last_t, level, method)
    if per_second == 0 or (per_second > 0) != rising:
        return Forecast(per_hour, None, None, level, method)
    hours = (threshold - level) / per_hour
    return Forecast(per_hour, hours, last_t + hours * 3600, level, method)
