"""Real `dbmon watcher` and `dbmon worker` processes, both modes: a config edit becomes a stored
event, an edit made while no watcher ran is found when it starts, and a burst loses nothing."""

from __future__ import annotations

import signal

from sqlalchemy import func, select

from monitor_app.store.models import Event
from monitor_app.store.models.files import FileChange, FileWatch
from tests.harness import wait_for


def _events(deployment, type_: str) -> list[Event]:
    with deployment.runtime.store.session() as s:
        rows = s.scalars(select(Event).where(Event.type == type_).order_by(Event.id)).all()
        s.expunge_all()
        return list(rows)


def _ready(deployment) -> bool:
    with deployment.runtime.store.session() as s:
        watches = s.scalars(select(FileWatch).where(FileWatch.status != "removed")).all()
        return bool(watches) and all(w.baseline_ready for w in watches)


def test_edits_reach_the_store_through_the_watcher_even_while_it_was_down(deployment, tmp_path):
    etc, logs = tmp_path / "etc", tmp_path / "logs"
    etc.mkdir()
    logs.mkdir()
    conf = etc / "postgresql.conf"
    conf.write_text("max_connections = 100\n")
    deployment.write_config(f"watch:\n  - path: {etc}\n    kinds: [config]\n  - path: {logs}\n    kinds: [log]\n")
    deployment.start_worker()
    deployment.start("watcher", "watcher")
    wait_for(lambda: _ready(deployment), 60, what="both watches baselined")
    wait_for(lambda: "watch source files started" in deployment.log("watcher"), 30, what="file source started")

    conf.write_text("max_connections = 200\n")
    (event,) = wait_for(lambda: _events(deployment, "file.config_changed"), 20, what="the edit stored")
    assert event.payload["diff"][0]["parameter"] == "max_connections"
    assert event.payload["diff"][0]["restart_required"] is True

    deployment.kill("watcher", signal.SIGKILL)
    conf.write_text("max_connections = 300\n")  # nobody watching
    deployment.start("watcher", "watcher")
    changed = wait_for(lambda: len(_events(deployment, "file.config_changed")) == 2
                       and _events(deployment, "file.config_changed"), 30, what="the missed edit found at start")
    assert changed[1].payload["diff"][0]["new"] in ("300", 300)

    for i in range(3000):
        (logs / f"burst-{i}.log").write_text("x")

    def stored() -> int:
        with deployment.runtime.store.session() as s:
            return s.scalar(select(func.count()).select_from(FileChange).where(FileChange.type == "created",
                                                                               FileChange.path.like(f"{logs}/%")))
    wait_for(lambda: stored() == 3000, 60, what="every file of the burst recorded")
    created = _events(deployment, "file.created")
    # Folded per scan: every file is counted once, in a few dozen events rather than 3,000.
    assert sum(e.payload.get("count", 1) for e in created) == 3000
    assert len(created) < 100
