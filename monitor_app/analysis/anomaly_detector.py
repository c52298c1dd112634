"""An anomaly detector for one series that a person would keep on their pager.

Points are folded into fixed steps (a minute by default); each closed step is compared with up to
three predictions of what is normal now:

- `rolling`: the median of the last hour of normal steps (from the first quarter hour on);
- `daily` and `weekly`: the seasonal profiles (`seasonal_profile.py`), once they have seen enough
  cycles and then predicted for two hours of trial.

A prediction whose error is over `CREDIBLE` times the best one's is not consulted.

Each prediction keeps an exponentially weighted mean of its absolute error, with outliers clipped
so one spike cannot widen it; that error, scaled to a standard deviation, is the noise its score
is measured in. The best of them judges a step: it breaches when its score passes the
sensitivity, its distance is at least `min_effect` (a big score on a near-zero series pages
nobody) and it goes in an allowed direction, unless another trusted prediction finds the step
ordinary. So a weekend the weekly profile expects, or a morning rise the daily one knows, is not
an anomaly, while a shift away from all of them is. A window opens when `k` of the last `n` steps breach the same way, and
closes once `n` steps in a row are back within half the sensitivity.

What the rolling baseline and the noise estimates learn is guarded: breaching steps, steps inside
a window and steps half-way to a breach teach the rolling median nothing (or a slow ramp would
drag it along and never look unusual), until `HOLD` such steps in a row say the series itself has
changed. The seasonal profiles learn every step: a median over days shrugs off an anomaly. A window still open after
`adapt_after` is taken as the new normal: it ends and the rolling baseline restarts from the
recent steps. After a long gap the rolling baseline starts over.

Everything is O(1) or O(rolling window) per step, and the whole state is a JSON-able dict, so a
worker can pick the series up where another left it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field

from monitor_app.analysis.seasonal_profile import DAILY, WEEKLY, SeasonalProfile

SENSITIVITY = {"low": 6.0, "medium": 4.5, "high": 3.5}
DIRECTIONS = ("up", "down", "both")
ROLLING_STEPS = 60
ROLLING_READY = 15
SEASONAL_TRIAL = 120  # steps a seasonal prediction is scored before it may become the baseline
ERROR_WEIGHT = 1 / 240  # about four hours of steps
CLIP = 5.0  # residuals beyond this many sigmas teach the noise estimate no more than this
GAP_STEPS = 10  # a longer silence forgets the persistence window
STALE_STEPS = 30  # and a longer one the rolling baseline
HOLD = 30  # suspicious steps in a row kept out of the baselines
SIGMA_PER_MEAN_ABS = 1.2533  # mean |N(0, s)| = 0.798 s
CREDIBLE = 2.0  # a prediction whose noise is more than this times the best one's is not consulted


@dataclass(frozen=True)
class DetectorSettings:
    direction: str = "both"
    sensitivity: float = SENSITIVITY["medium"]
    min_effect: float = 0.0
    step: float = 60.0
    n: int = 5
    k: int = 4
    adapt_after: float = 6 * 3600.0
    # "score": breach on the z-score (anomaly rules); "ratio": on value vs factor x baseline.
    mode: str = "score"
    factor: float = 3.0

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
        if not (self.sensitivity > 0 and self.step > 0 and self.min_effect >= 0 and self.factor > 0):
            raise ValueError("sensitivity, step and factor must be positive, min_effect not negative")
        if not 1 <= self.k <= self.n:
            raise ValueError("k must be between 1 and n")

    @classmethod
    def lasting(cls, seconds: float, **kw) -> "DetectorSettings":
        """Settings whose persistence window spans `seconds` (a rule's `for`): 80 % of its steps."""
        step = kw.get("step", 60.0)
        n = max(1, round(seconds / step))
        return cls(n=n, k=max(1, math.ceil(0.8 * n)), **kw)


@dataclass
class Step:
    at: float
    value: float
    baseline: float | None
    sigma: float | None
    score: float
    breach: int  # +1 up, -1 down, 0 none
    source: str | None


@dataclass
class Window:
    start: float
    direction: str
    end: float | None = None
    peak_score: float = 0.0
    peak_value: float = 0.0
    baseline: float | None = None
    adapted: bool = False


@dataclass
class _Errors:
    mean_abs: float | None = None
    count: int = 0

    def sigma(self) -> float | None:
        return None if self.mean_abs is None else self.mean_abs * SIGMA_PER_MEAN_ABS

    def learn(self, residual: float, clip: float = CLIP) -> None:
        size = abs(residual)
        if self.mean_abs:
            size = min(size, clip * self.mean_abs * SIGMA_PER_MEAN_ABS)
        # A plain mean over the first steps, then the long-run weight: quick to warm up, slow to forget.
        weight = max(ERROR_WEIGHT, 1 / (self.count + 1))
        self.mean_abs = size if self.mean_abs is None else self.mean_abs + weight * (size - self.mean_abs)
        self.count += 1


class Detector:
    def __init__(self, settings: DetectorSettings, state: dict | None = None):
        self.s = settings
        state = state or {}
        self.rolling: deque[float] = deque(state.get("rolling", []), maxlen=ROLLING_STEPS)
        self._sorted = sorted(self.rolling)
        self.recent: deque[float] = deque(state.get("recent", []), maxlen=ROLLING_STEPS)
        self.daily = SeasonalProfile(DAILY, state.get("daily"))
        self.weekly = SeasonalProfile(WEEKLY, state.get("weekly"))
        self.errors = {name: _Errors(*state.get("errors", {}).get(name, (None, 0)))
                       for name in ("rolling", "daily", "weekly")}
        self.marks: deque[int] = deque(state.get("marks", []), maxlen=settings.n)
        self.calm = state.get("calm", 0)
        self.held = state.get("held", 0)
        self.open: Window | None = Window(**state["open"]) if state.get("open") else None
        self.last_step: float | None = state.get("last_step")
        self.pending: list[float] | None = state.get("pending")  # [step start, sum, count]

    def state(self) -> dict:
        return {"rolling": list(self.rolling), "recent": list(self.recent), "daily": self.daily.state(),
                "weekly": self.weekly.state(), "errors": {k: (e.mean_abs, e.count) for k, e in self.errors.items()},
                "marks": list(self.marks), "calm": self.calm, "held": self.held, "open": self.open.__dict__ if self.open else None,
                "last_step": self.last_step, "pending": self.pending}

    # -- feeding -----------------------------------------------------------------------------

    def add(self, at: float, value: float) -> list[tuple[Step, list[Window]]]:
        """Fold one point in; returns what the steps it closed produced (most calls: nothing)."""
        if not math.isfinite(value):
            return []
        start = at - at % self.s.step
        out = []
        if self.pending is not None and start > self.pending[0]:
            out.append(self._close_pending())
        if self.pending is None:
            self.pending = [start, 0.0, 0]
        if start == self.pending[0]:
            self.pending[1] += value
            self.pending[2] += 1
        return out

    def flush(self, until: float | None = None) -> list[tuple[Step, list[Window]]]:
        """Close the pending step if it has ended by `until` (always when None)."""
        if self.pending is None or (until is not None and until < self.pending[0] + self.s.step):
            return []
        return [self._close_pending()]

    def _close_pending(self) -> tuple[Step, list[Window]]:
        assert self.pending is not None  # nosec B101 - callers check
        start, total, count = self.pending
        self.pending = None
        return self.step(start, total / count)

    # -- one step ----------------------------------------------------------------------------

    def _predictions(self, at: float) -> dict[str, float]:
        out = {}
        if len(self._sorted) >= ROLLING_READY:
            ordered, mid = self._sorted, len(self._sorted) // 2
            out["rolling"] = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        for profile in (self.daily, self.weekly):
            guess = profile.predict(at)
            if guess is not None:
                out[profile.season.name] = guess
        return out

    def _trusted(self, predictions: dict[str, float]) -> list[tuple[str, float, float]]:
        out = []
        for name, guess in predictions.items():
            errors = self.errors[name]
            sigma = errors.sigma()
            if sigma is not None and (name == "rolling" or errors.count >= SEASONAL_TRIAL):
                out.append((name, guess, sigma))
        # One that predicts far worse than the best (a rolling median lagging a steep daily curve)
        # has no say.
        best = min((sigma for *_, sigma in out), default=0.0)
        return [t for t in out if t[2] <= CREDIBLE * best]

    def _breach(self, value: float, baseline: float, sigma: float, threshold: float) -> tuple[int, float]:
        residual = value - baseline
        # A floor on sigma: a flat series (sigma 0) would make every wobble infinitely surprising.
        floor = max(abs(baseline) * 1e-3, 1e-9)
        score = residual / max(sigma, floor)
        if abs(residual) < self.s.min_effect:
            return 0, score
        if self.s.mode == "ratio":
            if self.s.direction != "down" and value >= self.s.factor * baseline and residual > 0:
                return 1, score
            if self.s.direction == "down" and value <= self.s.factor * baseline and residual < 0:
                return -1, score
            return 0, score
        if score >= threshold:
            return 1, score
        if score <= -threshold:
            return -1, score
        return 0, score

    def step(self, at: float, value: float) -> tuple[Step, list[Window]]:
        if self.last_step is not None and at - self.last_step > GAP_STEPS * self.s.step:
            self.marks.clear()
            if at - self.last_step > STALE_STEPS * self.s.step:  # the last hour's median says little now
                self.rolling.clear()
                self._sorted = []
                self.errors["rolling"] = _Errors()
        self.last_step = at
        predictions = self._predictions(at)
        judged = [(name, guess, sigma, *self._breach(value, guess, sigma, self.s.sensitivity))
                  for name, guess, sigma in self._trusted(predictions)]
        if judged:
            # The best prediction judges; another credible one that finds the step ordinary (within
            # half the sensitivity) overrules it: a weekend the weekly profile expects, or a morning
            # rise the daily one knows, is not news.
            source, baseline, sigma, breach, score = min(judged, key=lambda j: j[2])
            if breach and any(abs(j[4]) < self.s.sensitivity / 2 or j[3] == -breach for j in judged):
                breach = 0
            suspicious = max(abs(j[4]) for j in judged) >= self.s.sensitivity / 2
        else:
            breach, source, baseline, sigma, score, suspicious = 0, None, None, None, 0.0, False
        step = Step(at, value, baseline, sigma, score, breach, source)
        self.marks.append(breach)
        windows = self._track(step)
        self.recent.append(value)
        # A step half-way to a breach teaches the baselines nothing, or a slow ramp would drag them
        # along and never look unusual; after HOLD such steps in a row it is the series that changed.
        self.held = self.held + 1 if suspicious else 0
        if breach == 0 and self.open is None:
            self._learn(at, value, predictions, baselines=self.held == 0 or self.held > HOLD)
        # The profiles learn every step: their medians over days shrug off an anomaly, and a
        # weekend the first week took for one is what the weekly profile must learn.
        self.daily.learn(at, value)
        self.weekly.learn(at, value)
        return step, windows

    def _learn(self, at: float, value: float, predictions: dict[str, float], baselines: bool) -> None:
        for name, guess in predictions.items():
            self.errors[name].learn(value - guess, self.clip)
        if not baselines:
            return
        if len(self.rolling) == self.rolling.maxlen:
            self._sorted.pop(bisect_left(self._sorted, self.rolling[0]))
        self.rolling.append(value)
        insort(self._sorted, value)
        if "rolling" not in predictions and len(self._sorted) >= ROLLING_READY:
            self._seed_rolling_errors()

    def _seed_rolling_errors(self) -> None:
        ordered, mid = self._sorted, len(self._sorted) // 2
        median = ordered[mid]
        deviations = sorted(abs(v - median) for v in ordered)
        # MAD scaled to a mean absolute deviation of normal noise (0.6745 sigma -> 0.798 sigma)
        self.errors["rolling"] = _Errors(deviations[len(deviations) // 2] * 1.183, len(ordered))

    def _track(self, step: Step) -> list[Window]:
        ended = []
        if self.open is not None:
            sign = 1 if self.open.direction == "up" else -1
            still = step.baseline is not None and sign * step.score >= self.s.sensitivity / 2 \
                and abs(step.value - (step.baseline or 0)) >= self.s.min_effect
            if self.s.mode == "ratio":
                still = step.breach == sign
            self.calm = 0 if still else self.calm + 1
            if still and sign * step.score > self.open.peak_score:
                self.open.peak_score, self.open.peak_value = sign * step.score, step.value
            if self.calm >= self.s.n:
                ended.append(self._end(step.at - (self.s.n - 1) * self.s.step))
            elif step.at - self.open.start >= self.s.adapt_after:
                ended.append(self._end(step.at + self.s.step, adapted=True))
            return ended
        for sign, direction in ((1, "up"), (-1, "down")):
            if sum(1 for m in self.marks if m == sign) >= self.s.k:
                first = len(self.marks) - list(self.marks).index(sign)
                self.open = Window(start=step.at - (first - 1) * self.s.step, direction=direction,
                                   peak_score=sign * step.score, peak_value=step.value, baseline=step.baseline)
                self.calm = 0
                break
        return ended

    def _end(self, at: float, adapted: bool = False) -> Window:
        window, self.open = self.open, None
        assert window is not None  # nosec B101 - only called with a window open
        window.end, window.adapted = at, adapted
        self.marks.clear()
        if adapted:  # the new level is normal now: relearn the rolling baseline from it
            self.rolling = deque(self.recent, maxlen=ROLLING_STEPS)
            self._sorted = sorted(self.rolling)
            self._seed_rolling_errors()
        return window

    @property
    def clip(self) -> float:
        # Winsorised at half the sensitivity: a ramp's steps widen the noise estimate little, and
        # normal noise hardly loses anything (about 1 % of the mean absolute error of Gaussian noise).
        return min(CLIP, self.s.sensitivity / 2)

    def reportable(self, window: Window) -> bool:
        return self.s.direction in ("both", window.direction)


@dataclass
class Scan:
    windows: list[Window] = field(default_factory=list)
    steps: int = 0


def scan(points, settings: DetectorSettings) -> Scan:
    """Run a fresh detector over (epoch seconds, value) points in time order; the reportable
    windows it found, an unfinished one included with `end` None."""
    detector = Detector(settings)
    found = Scan()

    def take(results):
        for _step, ended in results:
            found.steps += 1
            found.windows.extend(w for w in ended if detector.reportable(w))

    for at, value in points:
        take(detector.add(at, value))
    take(detector.flush())
    if detector.open is not None and detector.reportable(detector.open):
        found.windows.append(detector.open)
    return found
