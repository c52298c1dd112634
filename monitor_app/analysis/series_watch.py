"""Detectors kept per (rule, series) in the store: fed the stored series one minute at a time, their
windows written down as they open and close.

Each evaluation feeds only the minutes a detector has not seen, up to one that has had time to
settle (a poll's samples land a few seconds after their time), so feeding twice is a no-op and two
evaluations racing compute the same thing. A new detector starts from the series' stored history
(two weeks: enough for the daily profile and a first weekly one), at most `WARM_STARTS` of them per
evaluation so a thousand new series cost a thousand evaluations' spare time, not one long stall.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import delete as sa_delete, select, update
from sqlalchemy.orm import Session

from monitor_app.analysis.anomaly_detector import Detector, DetectorSettings, Window
from monitor_app.metrics.rollup import floor_time
from monitor_app.metrics.series_query import Query, read_series_in
from monitor_app.store.models import MetricSeries
from monitor_app.store.base import from_epoch, upsert_insert
from monitor_app.store.models.analysis import MetricAnomaly, SeriesDetectorState

STEP = timedelta(minutes=1)
SETTLE = timedelta(seconds=20)
WARM_HISTORY = timedelta(days=14)
READ_SPAN = timedelta(days=7)  # a read at one-minute steps stays under the query's bucket cap
MAX_CATCH_UP = timedelta(hours=6)  # behind more than this: skip ahead (a gap) rather than replay
WARM_STARTS = 20
ABANDONED = timedelta(days=7)


@dataclass
class Watched:
    series: MetricSeries
    detector: Detector
    ended: list[Window] = field(default_factory=list)

    @property
    def open(self) -> Window | None:
        window = self.detector.open
        return window if window is not None and self.detector.reportable(window) else None


def _epoch(at: datetime) -> float:
    return at.timestamp()


def pack(state: dict) -> bytes:
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 6)


def unpack(blob: bytes) -> dict | None:
    try:
        state = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _restored(settings: DetectorSettings, row: SeriesDetectorState | None) -> Detector | None:
    """The row's detector; None for none, or for a damaged state or one of another version, which
    starts over from the stored history rather than failing every evaluation."""
    state = unpack(row.state) if row is not None else None
    if state is None:
        return None
    try:
        return Detector(settings, state)
    except (KeyError, ValueError, TypeError, IndexError):
        return None


def _feed(watched: Watched, times: list[int], sums: list[float], counts: list[int], after: float, end: float) -> None:
    detector = watched.detector
    for t, total, count in zip(times, sums, counts, strict=True):
        at = t / 1000
        if at < after or not count:
            continue
        for _step, ended in detector.add(at, total / count):
            watched.ended += [w for w in ended if detector.reportable(w)]
    for _step, ended in detector.flush(until=end):
        watched.ended += [w for w in ended if detector.reportable(w)]


def _read(session: Session, ids: list[int], start: datetime, end: datetime,
          now: datetime) -> dict[int, tuple[list, list, list]]:
    """One-minute buckets per series over [start, end), in reads of at most READ_SPAN."""
    merged: dict[int, tuple[list, list, list]] = {i: ([], [], []) for i in ids}
    while start < end:
        stop = min(end, start + READ_SPAN)
        _, found = read_series_in(session, ids, Query(start, stop, STEP), now)
        for i, buckets in found.items():
            merged[i][0].extend(buckets.times)
            merged[i][1].extend(buckets.sums)
            merged[i][2].extend(buckets.counts)
        start = stop
    return merged


def feed(session: Session, rule: str, series: list[MetricSeries], settings_for: Callable[[MetricSeries], DetectorSettings],
         now: datetime) -> list[Watched]:
    """Bring each series' detector up to the last settled minute and write down its windows; the
    detectors fed now. Only those behind are loaded: most evaluations fall inside a minute already
    fed, and unpacking every state each time would cost more than all the feeding."""
    end = floor_time(now - SETTLE, STEP)
    ids = [s.id for s in series]
    known = dict(session.execute(select(SeriesDetectorState.series_id, SeriesDetectorState.fed_until).where(
        SeriesDetectorState.rule == rule, SeriesDetectorState.series_id.in_(ids))).all()) if ids else {}
    due = [s.id for s in series if s.id in known and known[s.id] < end]
    rows = {r.series_id: r for r in session.scalars(select(SeriesDetectorState).where(
        SeriesDetectorState.rule == rule, SeriesDetectorState.series_id.in_(due)))} if due else {}
    behind: list[tuple[Watched, datetime]] = []
    fresh: list[Watched] = []
    for s in series:
        if s.id in known and s.id not in rows:
            continue  # fed up to the last settled minute already
        row = rows.get(s.id)
        detector = _restored(settings_for(s), row)
        if detector is None:
            if len(fresh) < WARM_STARTS:
                fresh.append(Watched(s, Detector(settings_for(s))))
            continue
        behind.append((Watched(s, detector), max(known[s.id], end - MAX_CATCH_UP)))
    if behind:
        start = min(since for _, since in behind)
        columns = _read(session, [w.series.id for w, _ in behind], start, end, now)
        for w, since in behind:
            _feed(w, *columns[w.series.id], after=_epoch(since), end=_epoch(end))
    if fresh:
        columns = _read(session, [w.series.id for w in fresh], end - WARM_HISTORY, end, now)
        for w in fresh:
            _feed(w, *columns[w.series.id], after=0.0, end=_epoch(end))
    fed = [b for b, _ in behind] + fresh
    _save(session, rule, fed, end, now)
    return fed


def open_windows(session: Session, rule: str, series_ids: list[int]) -> dict[int, MetricAnomaly]:
    """The rule's windows still open, by series: what its alerts are made of."""
    if not series_ids:
        return {}
    return {a.series_id: a for a in session.scalars(select(MetricAnomaly).where(
        MetricAnomaly.rule == rule, MetricAnomaly.end_at.is_(None), MetricAnomaly.series_id.in_(series_ids)))}


def _save(session: Session, rule: str, fed: list[Watched], end: datetime, now: datetime) -> None:
    """Every detector fed, in one statement (an upsert each was most of a minute's cost)."""
    if not fed:
        return
    statement = upsert_insert(session, SeriesDetectorState)
    session.execute(statement.on_conflict_do_update(
        index_elements=["rule", "series_id"],
        set_={k: statement.excluded[k] for k in ("fed_until", "state", "updated_at")}),
        [{"rule": rule, "series_id": w.series.id, "fed_until": end, "state": pack(w.detector.state()),
          "updated_at": now} for w in fed])
    for w in fed:
        if w.ended or w.open:
            record_windows(session, rule, w)


def record_windows(session: Session, rule: str, w: Watched) -> None:
    """The rule's windows on this series as rows: one per start, its end filled in when it ends."""
    kind = "baseline" if w.detector.s.mode == "ratio" else "anomaly"
    for window in [*w.ended, *([w.open] if w.open else [])]:
        start = from_epoch(window.start)
        values = {"end_at": from_epoch(window.end) if window.end is not None else None, "score": window.peak_score,
                  "peak": window.peak_value, "adapted": window.adapted}
        changed = _rowcount(session.execute(update(MetricAnomaly).where(
            MetricAnomaly.rule == rule, MetricAnomaly.series_id == w.series.id, MetricAnomaly.start == start,
        ).values(**values)))
        if not changed:
            session.add(MetricAnomaly(rule=rule, kind=kind, series_id=w.series.id, asset_id=w.series.asset_id,
                                      metric=w.series.name, start=start, direction=window.direction,
                                      baseline=window.baseline, **values))
    session.flush()


def _rowcount(result) -> int:
    return result.rowcount


def prune(session: Session, now: datetime, retention: timedelta) -> dict:
    """Detectors nobody fed for `ABANDONED` (a rule removed or renamed, a series gone quiet: their
    rolling baseline is stale anyway and a new one starts from the stored history), and windows
    that ended before the metrics retention."""
    detectors = _rowcount(session.execute(sa_delete(SeriesDetectorState).where(
        SeriesDetectorState.updated_at < now - ABANDONED)))
    windows = _rowcount(session.execute(sa_delete(MetricAnomaly).where(MetricAnomaly.end_at < now - retention)))
    return {"detectors": detectors, "anomaly_windows": windows}
