"""The anomaly detector finds sustained changes, not spikes, and the forecast's trend sees through a daily cycle."""

from __future__ import annotations

import json
import math
import random

import pytest

from monitor_app.analysis.anomaly_detector import Detector, DetectorSettings, scan
from monitor_app.analysis.forecast import forecast

MIDNIGHT = 1704067200.0  # a UTC midnight, so the detector's days start where the series' days do
MINUTE = 60.0
DAY = 86400.0


def series(minutes: int, shape=lambda minute: 100.0, noise: float = 2.0, seed: int = 7, every: float = MINUTE):
    """(epoch seconds, value) points: `shape(minute)` plus Gaussian noise."""
    rng = random.Random(seed)
    count = int(minutes * MINUTE / every)
    return [(MIDNIGHT + i * every, shape(i * every / MINUTE) + rng.gauss(0, noise)) for i in range(count)]


def shifted(by: float, start: int, end: int, base: float = 100.0):
    return lambda minute: base + (by if start <= minute < end else 0.0)


@pytest.mark.parametrize("by, direction", [(30.0, "up"), (-30.0, "down")])
def test_a_level_shift_is_found_where_it_starts_and_in_its_direction(by, direction):
    found = scan(series(600, shifted(by, 300, 360)), DetectorSettings()).windows
    assert len(found) == 1
    window = found[0]
    assert window.direction == direction
    assert abs(window.start - (MIDNIGHT + 300 * MINUTE)) <= 5 * MINUTE
    assert window.end is not None and window.end <= MIDNIGHT + 380 * MINUTE


def test_a_one_step_spike_breaches_but_opens_no_window():
    points = series(600, lambda minute: 100.0 + (40.0 if minute == 300 else 0.0))
    detector, steps, windows = Detector(DetectorSettings()), [], []
    for at, value in points:
        for step, ended in detector.add(at, value):
            steps.append(step)
            windows += ended
    spike = next(s for s in steps if s.at == MIDNIGHT + 300 * MINUTE)
    assert spike.breach == 1  # seen as surprising on its own ...
    assert windows == [] and detector.open is None  # ... but one step is no anomaly
    assert scan(points, DetectorSettings()).windows == []


def test_direction_up_ignores_a_drop():
    points = series(600, shifted(-30.0, 300, 360))
    assert [w.direction for w in scan(points, DetectorSettings()).windows] == ["down"]
    assert scan(points, DetectorSettings(direction="up")).windows == []


def test_min_effect_keeps_a_tiny_change_on_a_near_flat_series_quiet():
    points = series(600, shifted(0.1, 300, 360, base=10.0), noise=0.001)
    assert len(scan(points, DetectorSettings()).windows) == 1  # 0.1 is many sigmas here
    assert scan(points, DetectorSettings(min_effect=1.0)).windows == []


def _seasonal(minute: float) -> float:
    return 1000.0 + 400.0 * math.sin(2 * math.pi * minute / 1440)


@pytest.mark.parametrize("split_minute, open_at_split", [(2.5, False), (45.5, True)])
def test_state_survives_json_halfway_and_finds_the_same_windows(split_minute, open_at_split):
    # Points every 30 s, so the split leaves a step half folded. It falls inside the second shift:
    # after its first breaches (a window not yet open), or with the window open.
    def shape(minute):
        return _seasonal(minute) + (200.0 if 3 * 1440 + 600 <= minute < 3 * 1440 + 700 else 0.0) \
            - (250.0 if 4 * 1440 <= minute < 4 * 1440 + 90 else 0.0)

    points = series(4 * 1440 + 300, shape, noise=10.0, every=30.0)
    settings = DetectorSettings()
    whole = scan(points, settings).windows

    split = next(i for i, (at, _) in enumerate(points) if at >= MIDNIGHT + (4 * 1440 + split_minute) * MINUTE)
    first, windows = Detector(settings), []
    for at, value in points[:split]:
        windows += [w for _, ended in first.add(at, value) for w in ended]
    assert (first.open is not None) == open_at_split and first.pending is not None
    second = Detector(settings, json.loads(json.dumps(first.state())))
    for at, value in points[split:]:
        windows += [w for _, ended in second.add(at, value) for w in ended]
    windows += [w for _, ended in second.flush() for w in ended]
    if second.open is not None:
        windows.append(second.open)

    assert [w.direction for w in whole] == ["up", "down"]
    # Exactly the same windows; the baselines they carry only to the profile's stored precision.
    assert [_when(w) for w in windows] == [_when(w) for w in whole]
    assert [_how(w) for w in windows] == [pytest.approx(_how(w), rel=1e-9) for w in whole]


def _when(window) -> tuple:
    return window.start, window.end, window.direction, window.adapted


def _how(window) -> tuple:
    return window.peak_score, window.peak_value, window.baseline


def test_a_lasting_shift_becomes_the_new_normal_after_adapt_after():
    settings = DetectorSettings()
    points = series(10 * 60, shifted(30.0, 120, 10 * 60))
    found = scan(points, settings).windows
    assert len(found) == 1
    window = found[0]
    assert window.adapted and window.direction == "up"
    assert window.end - window.start == pytest.approx(settings.adapt_after, abs=5 * MINUTE)


@pytest.mark.parametrize("gap, windows", [(5, 1), (15, 0)])
def test_a_gap_longer_than_ten_steps_forgets_the_breaches_before_it(gap, windows):
    # Three breaching steps, a silence, three more: four of five only if the first three still count.
    def shape(minute):
        return 100.0 + (30.0 if 120 <= minute < 123 or 123 + gap <= minute < 126 + gap else 0.0)

    points = [p for p in series(300, shape) if not MIDNIGHT + 123 * MINUTE <= p[0] < MIDNIGHT + (123 + gap) * MINUTE]
    assert len(scan(points, DetectorSettings()).windows) == windows


def test_the_daily_profile_becomes_the_baseline_of_a_seasonal_series_after_three_days():
    detector, sources = Detector(DetectorSettings()), {}
    for at, value in series(5 * 1440, _seasonal, noise=5.0):
        for step, _ in detector.add(at, value):
            sources.setdefault(int((step.at - MIDNIGHT) // DAY), []).append(step.source)
    assert "daily" not in sources[0] + sources[1] + sources[2]
    assert sources[4].count("daily") / len(sources[4]) > 0.9


def _line(hours: float, per_hour: float, start: float = 100.0, every: float = 300.0):
    return [(MIDNIGHT + i * every, start + per_hour * i * every / 3600) for i in range(int(hours * 3600 / every))]


@pytest.mark.parametrize("hours, method", [(12, "theil-sen"), (72, "cycle-difference")])
def test_steady_growth_gives_its_slope_and_the_hours_to_the_threshold(hours, method):
    points = _line(hours, per_hour=2.0)
    result = forecast(points, points[-1][1] + 50.0, window=DAY)
    assert result.method == method
    assert result.slope_per_hour == pytest.approx(2.0)
    assert result.hours_to_threshold == pytest.approx(25.0)
    assert result.eta == pytest.approx(points[-1][0] + 25 * 3600)


def _sawtooth(minute: float) -> float:
    """Grows 10 an hour from 08:00 to 18:00, loses 60 at 02:00: net 40 a day."""
    day, hour = divmod(minute / 60, 24)
    return 1060.0 + 40.0 * day + 10.0 * min(max(hour - 8, 0.0), 10.0) - (60.0 if hour >= 2 else 0.0)


def test_a_series_at_the_threshold_or_past_it_at_its_daily_peak_is_due_now():
    points = _line(48, per_hour=2.0)
    at = forecast(points, points[-1][1], window=DAY)
    assert at.hours_to_threshold == 0.0 and at.eta == points[-1][0]
    # 06:00 on day 4: below yesterday's peak, which already passed the threshold.
    cycle = [(MIDNIGHT + m * MINUTE, _sawtooth(m)) for m in range(0, 3 * 1440 + 360, 5)]
    assert cycle[-1][1] < 1170.0 < max(v for _, v in cycle[-288:])
    assert forecast(cycle, 1170.0, window=DAY).hours_to_threshold == 0.0


def test_a_falling_series_never_reaches_a_threshold_above_it():
    points = [(t, 500.0 - v) for t, v in _line(48, per_hour=2.0)]
    result = forecast(points, 600.0, window=DAY)
    assert result.slope_per_hour == pytest.approx(-2.0)
    assert result.hours_to_threshold is None and result.eta is None


def test_daily_growth_with_a_nightly_clean_up_is_forecast_within_ten_percent_from_three_days():
    now = 3 * 1440 + 13 * 60  # 13:00 on the fourth day, halfway up the day's growth
    history = [(MIDNIGHT + m * MINUTE, _sawtooth(m)) for m in range(now - 3 * 1440 + 1, now + 1)]
    threshold = 1500.0
    crossing = next(m for m in range(now, now + 60 * 1440) if _sawtooth(m) >= threshold)
    truth = (crossing - now) / 60
    result = forecast(history, threshold, window=DAY)
    assert result.method == "cycle-difference"
    assert result.slope_per_hour == pytest.approx(40.0 / 24, rel=0.01)
    assert result.hours_to_threshold == pytest.approx(truth, rel=0.10)
    # A fit over less than a cycle and a quarter sees the day's rise and the night's drop, not the net growth.
    naive = forecast(history[-1440:], threshold, window=DAY)
    assert naive.method == "theil-sen"
    assert naive.hours_to_threshold is None or abs(naive.hours_to_threshold - truth) > 0.10 * truth


def test_a_rising_series_already_over_an_upper_limit_is_there_now_and_free_space_counts_down():
    points = _line(30, per_hour=2.0, start=100.0)  # 100 -> 158
    over = forecast(points, 140.0, window=DAY, direction="up")
    assert over.hours_to_threshold == 0.0 and over.eta == points[-1][0]
    assert forecast(points, 140.0, window=DAY).eta is None  # auto: 140 is below, a falling target never met
    free = [(t, 500.0 - (v - 100.0)) for t, v in points]  # free space falling 2 an hour from 500 to 442
    out = forecast(free, 100.0, window=DAY, direction="down")
    assert out.slope_per_hour == pytest.approx(-2.0) and out.hours_to_threshold == pytest.approx(171.0, rel=0.01)


def test_the_cycle_differences_span_several_days_so_one_odd_day_moves_the_slope_little():
    # 10 an hour from 08:00 to 18:00 and 60 cleaned up at 02:00: net 40 a day; but the day before
    # the last grew three times as fast.
    weights = [1.0] * 7 + [3.0, 1.0]

    def value(m: int) -> float:
        day, minute = divmod(m, 1440)
        grown = sum(100 * w - 60 for w in weights[:day])
        today = 10 * weights[day] * min(max(minute - 480, 0), 600) / 60 - (60 if minute >= 120 else 0)
        return 1000 + grown + today

    points = [(MIDNIGHT + m * 60, value(m)) for m in range(0, 9 * 1440, 5)]
    assert forecast(points, 10_000, window=DAY).slope_per_hour * 24 == pytest.approx(40, rel=0.1)
