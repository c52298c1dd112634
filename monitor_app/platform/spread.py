"""Where in its interval each asset's periodic work falls: a stable slot per asset.

Without it, assets first seen together (a start-up, a config sync) stay due together: a
thousand checks every minute at the same second. Each asset instead gets an offset within the
interval from a hash of its id, and its work falls due at `offset + k * interval` (epoch
seconds). The slots of many assets are spread evenly over the interval, each asset keeps its
slot across restarts and machines, and a late run does not push its later runs back.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def offset(key: int | str, interval: float) -> float:
    """Seconds into each interval at which `key`'s work falls due, in [0, interval)."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


def last_slot(key: int | str, interval: float, now: datetime) -> datetime:
    """The latest instant not after `now` at which `key`'s work fell due."""
    phase = offset(key, interval)
    elapsed = (now - _EPOCH).total_seconds()
    k = math.floor((elapsed - phase) / interval)
    return _EPOCH + timedelta(seconds=k * interval + phase)


def next_slot(key: int | str, interval: float, after: datetime) -> datetime:
    """The first instant after `after` at which `key`'s work falls due."""
    return last_slot(key, interval, after) + timedelta(seconds=interval)


def is_due(key: int | str, interval: float, last_run: datetime | None, now: datetime) -> bool:
    """Never run: due at once (a new asset is looked at without waiting for its slot).
    Otherwise due once a slot has passed since the last run."""
    return last_run is None or last_run < last_slot(key, interval, now)
