"""A forecast of a stored series: its buckets over two trend windows, then `forecast.forecast`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from monitor_app.analysis.forecast import CYCLE_AWARE, Forecast, forecast
from monitor_app.metrics.series_query import Query, read_series_in

POINTS_PER_WINDOW = 288  # buckets over a trend window: 5 minutes for a day


def bucket_seconds(window: float) -> float:
    """The bucket a forecast over `window` reads at, and so how often it can change."""
    return max(60.0, window / POINTS_PER_WINDOW)


def stored_points(session: Session, series_id: int, span: float, window: float, now: datetime):
    """(epoch seconds at each bucket's middle, mean) over the last `span` seconds."""
    step = bucket_seconds(window)
    _, found = read_series_in(session, [series_id], Query(now - timedelta(seconds=span), now, timedelta(seconds=step)),
                              now)
    b = found[series_id]
    return [(t / 1000 + step / 2, total / count) for t, total, count in zip(b.times, b.sums, b.counts, strict=True)
            if count]


def stored_forecast(session: Session, series_id: int, threshold: float, window: float, now: datetime,
                    history_needed: float | None = None, direction: str = "auto") -> tuple[Forecast | None, float]:
    """The forecast and the seconds of history it stood on; None while there is less history than
    `history_needed` (default: 1.25 windows, a cycle seen whole)."""
    needed = CYCLE_AWARE * window if history_needed is None else history_needed
    points = stored_points(session, series_id, max(2 * window, needed), window, now)
    history = points[-1][0] - points[0][0] if len(points) > 1 else 0.0
    if history < needed - bucket_seconds(window):
        return None, history
    return forecast(points, threshold, window, direction), history
