"""Verdicts on the heartbeat rows: consumers per queue, beat, the leading watcher and the sources
it started; and what /healthz may show of them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from monitor_app.platform.task_queues import QUEUES
from monitor_app.selfmon.components import Component
from monitor_app.selfmon.liveness import assess

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=timezone.utc)


def component(kind: str, instance: str, age: float, *, queues=(), detail=None, interval=10.0) -> Component:
    return Component(kind, instance, "db-host-7", 99, tuple(queues), interval, NOW - timedelta(hours=1),
                     NOW - timedelta(seconds=age), detail or {}, age, age <= 3 * interval)


def everything_up(sources=("config", "docker")) -> list[Component]:
    return [component("worker", "main@db-host-7", 2, queues=QUEUES),
            component("beat", "beat@db-host-7", 3),
            component("watcher", "watcher@db-host-7", 1, detail={"leading": True, "sources": list(sources)}),
            *[component("watch_source", f"watcher@db-host-7/{s}", 1, detail={"source": s, "alive": True})
              for s in sources]]


def test_a_deployment_with_every_part_reporting_has_no_problem():
    verdict = assess(everything_up())
    assert verdict.problems == []
    assert verdict.consumers == dict.fromkeys(QUEUES, 1)
    assert verdict.beat["ok"] and verdict.watcher["ok"] and verdict.watcher["leader"] == "watcher@db-host-7"
    assert {name: s["ok"] for name, s in verdict.watch_sources.items()} == {"config": True, "docker": True}


def test_a_dead_worker_leaves_its_queues_without_consumers():
    found = everything_up()[1:] + [component("worker", "files@b", 45, queues=("files",)),
                                   component("worker", "rest@c", 1, queues=[q for q in QUEUES if q != "files"])]
    verdict = assess(found)
    assert verdict.consumers["files"] == 0 and verdict.consumers["schema"] == 1
    assert verdict.problems == ["no live worker consumes the files queue"]
    assert verdict.workers == {"alive": 1, "dead": 1, "age_seconds": 1}


def test_beat_silent_or_never_seen_is_a_problem():
    silent = [c for c in everything_up() if c.kind != "beat"] + [component("beat", "beat@a", 95)]
    assert assess(silent).problems == ["beat silent for 95 s"] and assess(silent).beat_age_seconds == 95
    never = [c for c in everything_up() if c.kind != "beat"]
    assert assess(never).problems == ["beat has never reported"] and assess(never).beat_age_seconds is None


def test_sources_the_leader_started_are_expected_and_a_dead_watcher_takes_them_down():
    found = everything_up()
    found[-1] = component("watch_source", "watcher@db-host-7/docker", 1, detail={"source": "docker", "alive": False})
    assert assess(found).problems == ["watch source docker is down"]

    dead_watcher = [c for c in everything_up() if c.kind not in ("watcher", "watch_source")] + [
        component("watcher", "watcher@a", 60, detail={"leading": True, "sources": ["config"]}),
        component("watch_source", "watcher@a/config", 60, detail={"source": "config", "alive": True}),
        component("watcher", "watcher@b", 1, detail={"leading": False, "sources": []})]  # a standby
    verdict = assess(dead_watcher)
    assert verdict.problems == ["no leading watcher: the last one was seen 60 s ago", "watch source config is down"]
    assert verdict.watcher["standbys"] == ["watcher@b"]


def test_a_source_moved_to_a_new_leader_is_up_and_one_left_out_on_purpose_is_not_expected():
    found = [c for c in everything_up() if c.kind not in ("watcher", "watch_source")] + [
        component("watcher", "watcher@a", 60, detail={"leading": True, "sources": ["config", "docker"]}),
        component("watch_source", "watcher@a/config", 60, detail={"source": "config"}),
        component("watch_source", "watcher@a/docker", 60, detail={"source": "docker"}),
        component("watcher", "watcher@b", 1, detail={"leading": True, "sources": ["config"]}),
        component("watch_source", "watcher@b/config", 1, detail={"source": "config", "alive": True})]
    verdict = assess(found)
    assert verdict.problems == []  # docker has nothing to watch on the new leader's host
    assert verdict.watch_sources["config"]["instance"] == "watcher@b/config"


def test_the_public_view_names_no_host_process_or_instance():
    public = assess(everything_up()).public_dict()
    text = repr(public)
    assert "db-host-7" not in text and "99" not in text and "instance" not in text
    assert public["workers"] == {"ok": True, "alive": 1, "age_seconds": 2, "queues_without_consumer": []}
    assert public["watch_sources"]["docker"] == {"ok": True, "age_seconds": 1}
