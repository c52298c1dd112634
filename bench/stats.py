"""Summaries for benchmark samples: medians and tail percentiles, nothing fancier."""

from __future__ import annotations

import json
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "median": statistics.median(values), "p99": percentile(values, 0.99),
            "min": min(values), "max": max(values)}


def write(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()}, **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
