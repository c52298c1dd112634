"""dbmon's view of itself at one moment: store and broker reachability, every component's
heartbeat, each queue's backlog, lag and consumers, and the share of recent task runs that failed.

`take_snapshot` is the one entry point: the self-check task writes series from it, the API's
`GET /api/v1/system` returns it, and a System page can render `as_dict()` as it is. Everything
it reads is bounded (a few grouped ledger reads, one row per component, one LLEN per queue).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from monitor_app.config.settings import Settings
from monitor_app.platform.dependency_health import check_broker, check_store
from monitor_app.platform.task_queues import QUEUES
from monitor_app.selfmon import state
from monitor_app.selfmon.components import Component, components
from monitor_app.selfmon.deadman import target_host
from monitor_app.selfmon.failures import TaskFailures, failure_rate
from monitor_app.selfmon.liveness import Assessment, assess
from monitor_app.selfmon.queues import BrokerQueue, LedgerQueue, broker_queues, ledger_queues
from monitor_app.store.base import Store, iso, utcnow

DEADMAN_STATE = "deadman"
CHECK_STATE = "check"


@dataclass(frozen=True)
class QueueStats:
    queue: str
    waiting: int  # ledger: dispatched runs not started yet
    retrying: int  # ledger: queued again for a retry or after a hand-back
    oldest_seconds: float  # the longest wait, by the ledger or (filesystem broker) the oldest message file
    broker_depth: int | None  # the broker's own count; None when it cannot be read
    consumers: int | None  # live workers taking from it; None when the store cannot be read

    def as_dict(self) -> dict:
        return {"waiting": self.waiting, "retrying": self.retrying, "oldest_seconds": round(self.oldest_seconds, 1),
                "broker_depth": self.broker_depth, "consumers": self.consumers}


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    store: dict
    broker: dict
    components: list[Component]
    assessment: Assessment | None  # None when the store cannot be read
    queues: dict[str, QueueStats]
    tasks: TaskFailures | None
    deadman: dict
    last_check_at: datetime | None

    @property
    def problems(self) -> list[str]:
        found = [] if self.store["ok"] else ["the store does not answer"]
        found += [] if self.broker["ok"] else ["the broker does not answer"]
        return found + (self.assessment.problems if self.assessment is not None else [])

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        a = self.assessment
        return {
            "at": iso(self.at), "healthy": self.healthy, "problems": self.problems,
            "store": self.store, "broker": self.broker,
            "workers": a.workers if a else None, "beat": a.beat if a else None,
            "watcher": a.watcher if a else None, "watch_sources": a.watch_sources if a else None,
            "queues": {q: s.as_dict() for q, s in self.queues.items()},
            "tasks": self.tasks.as_dict() if self.tasks else None,
            "components": [c.as_dict() for c in self.components],
            "deadman": self.deadman, "last_check_at": iso(self.last_check_at),
        }


def queue_stats(ledger: dict[str, LedgerQueue], broker: dict[str, BrokerQueue] | None,
                consumers: dict[str, int] | None, now: datetime) -> dict[str, QueueStats]:
    stats = {}
    for queue in list(QUEUES) + sorted(set(ledger) - set(QUEUES)):
        waits = ledger.get(queue, LedgerQueue(0, None, 0))
        in_broker = (broker or {}).get(queue)
        oldest = (now - waits.oldest_requested_at).total_seconds() if waits.oldest_requested_at else 0.0
        if in_broker is not None and in_broker.oldest_seconds is not None:
            oldest = max(oldest, in_broker.oldest_seconds)
        stats[queue] = QueueStats(queue, waits.waiting, waits.retrying, max(0.0, oldest),
                                  in_broker.depth if in_broker is not None else None,
                                  consumers.get(queue, 0) if consumers is not None else None)
    return stats


def deadman_view(settings: Settings, remembered: tuple[datetime | None, dict] | None) -> dict:
    """Whether the switch is on and how its last ping went; the URL itself never leaves, only its host."""
    if not settings.deadman_url:
        return {"configured": False}
    at, detail = remembered or (None, {})
    return {"configured": True, "target": target_host(settings.deadman_url), "interval": settings.deadman_interval,
            "last_ping_at": iso(at), "last_result": detail.get("result"), "last_ok": detail.get("ok")}


def take_snapshot(store: Store, settings: Settings, now: datetime | None = None) -> Snapshot:
    now = now or utcnow()
    store_check, broker_check = check_store(store), check_broker(settings)
    broker = broker_queues(settings, time.time()) if broker_check["ok"] else None
    if not store_check["ok"]:
        return Snapshot(now, store_check, broker_check, [], None, queue_stats({}, broker, None, now), None,
                        deadman_view(settings, None), None)
    with store.session() as s:
        found = components(s, now)
        ledger = ledger_queues(s)
        tasks = failure_rate(s, now)
        remembered = state.read(s)
    assessment = assess(found)
    last_check = remembered.get(CHECK_STATE, (None, {}))[0]
    return Snapshot(now, store_check, broker_check, found, assessment,
                    queue_stats(ledger, broker, assessment.consumers, now), tasks,
                    deadman_view(settings, remembered.get(DEADMAN_STATE)), last_check)


def component_health(store: Store, now: datetime | None = None) -> Assessment:
    """The heartbeat verdicts alone (one read of a small table): what /healthz adds to its checks."""
    now = now or utcnow()
    with store.session() as s:
        return assess(components(s, now))
