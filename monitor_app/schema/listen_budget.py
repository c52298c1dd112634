"""Which databases of a server get a LISTEN connection, and which fall back to pre-checks.

A LISTEN holds a connection for as long as it listens, so a server's listeners are capped at
its connection budget less one slot left for checks. The databases changed most recently are
the likeliest to change again and get the listeners; the rest are pre-checked in turn
(`fallback_precheck`). A database that changes while outside the set becomes the most recent
and takes the place of the least recent listener at the next refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable


@dataclass(frozen=True)
class Target:
    asset_id: int
    server: str
    dsn: str
    last_change: datetime | None


def listen_slots(budget: int) -> int:
    return max(0, budget - 1)


def choose(targets: list[Target], budget_for: Callable[[str], int]) -> tuple[list[Target], dict[str, list[Target]]]:
    """(targets to LISTEN on, the others by server), most recently changed first."""
    by_server: dict[str, list[Target]] = {}
    for target in targets:
        by_server.setdefault(target.server, []).append(target)
    listened: list[Target] = []
    fallback: dict[str, list[Target]] = {}
    for server, group in by_server.items():
        # Never changed sorts last; among equals the older asset (lower id) first, for a stable choice.
        group.sort(key=lambda t: (t.last_change is None, -(t.last_change.timestamp() if t.last_change else 0),
                                  t.asset_id))
        slots = listen_slots(budget_for(server))
        listened.extend(group[:slots])
        if group[slots:]:
            fallback[server] = group[slots:]
    return listened, fallback
