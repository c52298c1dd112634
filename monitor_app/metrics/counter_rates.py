"""Raw counters of two polls -> rates over the interval between them, or no rates at all.

A counter only means something against an earlier value of the same life: after a statistics
reset (`stats_reset` moved), a server restart (its start time moved) or any counter going back
(a reset not announced, e.g. stats discarded by crash recovery), the interval is dropped. A
rate is therefore never negative and never spans a reset; the next interval counts again.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CounterPoll:
    """One poll's counters and the identity of their life (server start, last reset)."""

    at: float  # epoch seconds
    started: float | None
    reset: float | None
    counters: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"at": self.at, "started": self.started, "reset": self.reset, "counters": dict(self.counters)}

    @classmethod
    def from_json(cls, data) -> CounterPoll | None:
        """A poll stored earlier; None for anything that is not one (a first poll, a damaged row)."""
        try:
            counters = {str(k): float(v) for k, v in dict(data["counters"]).items()}
            return cls(float(data["at"]), _optional(data.get("started")), _optional(data.get("reset")), counters)
        except (KeyError, TypeError, ValueError):
            return None


def _optional(value) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Interval:
    seconds: float
    deltas: dict[str, float]


def interval(previous: CounterPoll | None, current: CounterPoll) -> tuple[Interval | None, str | None]:
    """The deltas since `previous`, or (None, why the interval is dropped)."""
    if previous is None:
        return None, "first poll"
    seconds = current.at - previous.at
    if seconds <= 0:
        return None, "no time passed since the last poll"
    if previous.started != current.started:
        return None, "server restarted"
    if previous.reset != current.reset:
        return None, "statistics reset"
    common = previous.counters.keys() & current.counters.keys()
    deltas = {name: current.counters[name] - previous.counters[name] for name in common}
    if any(delta < 0 for delta in deltas.values()):
        return None, "counters went back"
    return Interval(seconds, deltas), None


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None
