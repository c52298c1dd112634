"""Liveness files for process health checks (container healthchecks, `dbmon health`).

A long-running process touches `<data_dir>/heartbeat/<process>` from its own main loop, so a
fresh file means the loop runs, not only that the process exists.
"""

from __future__ import annotations

import time
from pathlib import Path

from monitor_app.config.settings import Settings


def heartbeat_path(settings: Settings, process: str) -> Path:
    return settings.data_dir / "heartbeat" / process


def touch(settings: Settings, process: str) -> None:
    path = heartbeat_path(settings, process)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass  # a read-only or full data directory must not stop the process the file reports on


def age_seconds(settings: Settings, process: str) -> float | None:
    try:
        return time.time() - heartbeat_path(settings, process).stat().st_mtime
    except FileNotFoundError:
        return None
