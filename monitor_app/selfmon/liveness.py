"""What the heartbeat rows say about dbmon's parts: which queues have a live consumer, whether
beat ticks, whether a watcher leads and which of its sources run.

Pure: takes the judged rows (components.py), returns the verdicts and the problems in words.
Expected watch sources come from the leading watcher's own row (the sources it started), so a
source it leaves out on purpose (nothing to watch) is not reported down, while one that stops,
or a watcher that dies with all of its sources, is.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor_app.platform.task_queues import QUEUES
from monitor_app.selfmon.components import Component, freshest


@dataclass(frozen=True)
class Assessment:
    consumers: dict[str, int]
    workers: dict
    beat: dict
    watcher: dict
    watch_sources: dict[str, dict]
    problems: list[str]

    @property
    def beat_age_seconds(self) -> float | None:
        return self.beat["age_seconds"]

    def public_dict(self) -> dict:
        """For the unauthenticated /healthz: verdicts and ages, no host names, pids or instances."""
        return {
            "workers": {"ok": not any(n == 0 for n in self.consumers.values()), "alive": self.workers["alive"],
                        "age_seconds": self.workers["age_seconds"],
                        "queues_without_consumer": [q for q, n in self.consumers.items() if n == 0]},
            "beat": {"ok": self.beat["ok"], "age_seconds": self.beat["age_seconds"]},
            "watcher": {"ok": self.watcher["ok"], "age_seconds": self.watcher["age_seconds"]},
            "watch_sources": {name: {"ok": s["ok"], "age_seconds": s["age_seconds"]}
                              for name, s in self.watch_sources.items()},
        }


def _age(found: Component | None) -> float | None:
    return round(found.age_seconds, 1) if found is not None else None


def source_name(component: Component) -> str:
    named = component.detail.get("source")
    return named if isinstance(named, str) and named else component.instance.rpartition("/")[2]


def _watch_sources(leader: Component | None, sources: list[Component]) -> dict[str, dict]:
    expected = {str(s) for s in (leader.detail.get("sources") or [])} if leader is not None else set()
    running = {source_name(c) for c in sources if c.alive}
    verdicts = {}
    for name in sorted(expected | running):
        rows = [c for c in sources if source_name(c) == name]
        up = [c for c in rows if c.alive and c.detail.get("alive", True) is not False]
        latest = freshest(up) or freshest(rows)
        verdicts[name] = {"ok": bool(up), "age_seconds": _age(latest),
                          "instance": latest.instance if latest is not None else None}
    return verdicts


def assess(found: list[Component], queues: tuple[str, ...] = QUEUES) -> Assessment:
    by_kind: dict[str, list[Component]] = {}
    for c in found:
        by_kind.setdefault(c.kind, []).append(c)
    workers = by_kind.get("worker", [])
    alive_workers = [w for w in workers if w.alive]
    consumers = {q: sum(1 for w in alive_workers if q in w.queues) for q in queues}
    problems = [f"no live worker consumes the {q} queue" for q, n in consumers.items() if n == 0]

    beat = freshest(by_kind.get("beat", []))
    beat_ok = beat is not None and beat.alive
    if not beat_ok:
        problems.append("beat has never reported" if beat is None else f"beat silent for {beat.age_seconds:.0f} s")

    leaders = [w for w in by_kind.get("watcher", []) if w.detail.get("leading")]
    leader = freshest(leaders)
    watcher_ok = leader is not None and leader.alive
    if not watcher_ok:
        problems.append("no watcher has ever led" if leader is None
                        else f"no leading watcher: the last one was seen {leader.age_seconds:.0f} s ago")
    sources = _watch_sources(leader, by_kind.get("watch_source", []))
    problems += [f"watch source {name} is down" for name, s in sources.items() if not s["ok"]]

    return Assessment(
        consumers=consumers,
        workers={"alive": len(alive_workers), "dead": len(workers) - len(alive_workers),
                 "age_seconds": _age(freshest(workers))},
        beat={"ok": beat_ok, "age_seconds": _age(beat), "instance": beat.instance if beat else None},
        watcher={"ok": watcher_ok, "age_seconds": _age(leader), "leader": leader.instance if leader else None,
                 "standbys": sorted(w.instance for w in by_kind.get("watcher", [])
                                     if w.alive and not w.detail.get("leading"))},
        watch_sources=sources,
        problems=problems,
    )
