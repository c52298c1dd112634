"""What a series usually does at this time of day (or of week): the median of each slot over the
last few cycles.

A slot's value for one cycle is the mean of the accepted steps that fell in it; the profile keeps
the last `keep` of those per slot and predicts the median of them, interpolated between the
centres of the two nearest slots, so a smooth daily curve is not turned into a staircase whose
edges look like shifts. Medians of a handful of days shrug off one bad day.
"""

from __future__ import annotations

import base64
import math
from array import array
from dataclasses import dataclass


@dataclass(frozen=True)
class Season:
    name: str
    period: float  # seconds
    slot: float  # seconds
    keep: int  # cycles remembered per slot
    needs: int  # cycles a slot must have before it predicts

    @property
    def slots(self) -> int:
        return int(self.period // self.slot)


DAILY = Season("daily", 86400.0, 1800.0, keep=7, needs=3)
# One week is enough to be a candidate: it only counts where it agrees with the other baselines
# about what is unusual, and its trial shows whether it predicts well.
WEEKLY = Season("weekly", 7 * 86400.0, 1800.0, keep=4, needs=1)


class SeasonalProfile:
    def __init__(self, season: Season, state: dict | None = None):
        self.season = season
        n = season.slots
        self.history: list[list[float]]
        # the slot's running mean for the cycle it was last touched in: [cycle, sum, count]
        self.pending: list[list[float]]
        if state:
            self._restore(state)
        else:
            self.history = [[] for _ in range(n)]
            self.pending = [[-1, 0.0, 0] for _ in range(n)]
        # Worked out when a slot is first asked for: a step reads two slots, and restoring a
        # detector to feed it one minute must not sort all of them.
        self._medians: dict[int, float | None] = {}
        self.min_count = max(1, int(season.slot // 60) // 3)  # a slot seen for a third of its steps counts

    def state(self) -> dict:
        """Packed arrays rather than lists of numbers: a profile is some 2,000 floats, and writing
        them as JSON numbers was most of the cost of saving a detector."""
        flat = array("d", (v for h in self.history for v in h))
        return {"lengths": _b64(bytes(len(h) for h in self.history)), "values": _b64(flat.tobytes()),
                "cycles": _b64(array("q", (int(p[0]) for p in self.pending)).tobytes()),
                "sums": _b64(array("d", (p[1] for p in self.pending)).tobytes()),
                "counts": _b64(array("q", (int(p[2]) for p in self.pending)).tobytes())}

    def _restore(self, state: dict) -> None:
        n = self.season.slots
        lengths = base64.b64decode(state["lengths"])
        values = array("d", base64.b64decode(state["values"]))
        cycles = array("q", base64.b64decode(state["cycles"]))
        sums = array("d", base64.b64decode(state["sums"]))
        counts = array("q", base64.b64decode(state["counts"]))
        if not len(lengths) == len(cycles) == len(sums) == len(counts) == n or sum(lengths) != len(values) \
                or max(lengths, default=0) > self.season.keep:
            raise ValueError(f"a {self.season.name} profile of another shape")
        self.history, at = [], 0
        for length in lengths:
            self.history.append(values[at:at + length].tolist())
            at += length
        self.pending = [[c, s, k] for c, s, k in zip(cycles, sums, counts, strict=True)]

    def _position(self, at: float) -> tuple[int, int, float]:
        cycle = int(at // self.season.period)
        return cycle, int((at % self.season.period) // self.season.slot), (at % self.season.period) / self.season.slot

    def _median(self, values: list[float]) -> float | None:
        if len(values) < self.season.needs:
            return None
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    def _slot_median(self, slot: int) -> float | None:
        if slot not in self._medians:
            self._medians[slot] = self._median(self.history[slot])
        return self._medians[slot]

    def _settle(self, slot: int, cycle: int) -> None:
        """Move the slot's finished cycle into its history once a later cycle reaches it."""
        pending = self.pending[slot]
        if pending[0] == cycle or pending[0] < 0:
            return
        if pending[2] >= self.min_count:
            history = self.history[slot]
            history.append(pending[1] / pending[2])
            del history[:-self.season.keep]
            self._medians.pop(slot, None)
        pending[0], pending[1], pending[2] = cycle, 0.0, 0

    def learn(self, at: float, value: float) -> None:
        cycle, slot, _ = self._position(at)
        self._settle(slot, cycle)
        pending = self.pending[slot]
        pending[0] = cycle
        pending[1] += value
        pending[2] += 1

    def predict(self, at: float) -> float | None:
        cycle, _, position = self._position(at)
        centre = position - 0.5
        low = math.floor(centre)
        fraction = centre - low
        n = self.season.slots
        a, b = low % n, (low + 1) % n
        # A neighbour across the cycle's start belongs to the previous or next cycle.
        for slot in (a, b):
            self._settle(slot, cycle)
        va, vb = self._slot_median(a), self._slot_median(b)
        if va is None or vb is None:
            return va if vb is None else vb
        return va + (vb - va) * fraction


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
