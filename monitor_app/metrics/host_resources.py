"""Host resource sampling: CPU, memory, swap, load and disk usage of the paths that matter."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Sample:
    name: str
    value: float
    labels: dict = field(default_factory=dict)


def sample_host(disk_paths: list[Path], cpu_window: float = 0.2) -> list[Sample]:
    samples = [Sample("host.cpu_percent", psutil.cpu_percent(interval=cpu_window))]
    mem = psutil.virtual_memory()
    samples += [
        Sample("host.memory_percent", mem.percent),
        Sample("host.memory_available_bytes", float(mem.available)),
        Sample("host.swap_percent", psutil.swap_memory().percent),
    ]
    load1, load5, load15 = os.getloadavg()
    samples += [Sample("host.load1", load1), Sample("host.load5", load5), Sample("host.load15", load15)]
    seen_devices: set[int] = set()
    for path in disk_paths:
        path = _existing_parent(path)
        dev = path.stat().st_dev
        if dev in seen_devices:
            continue
        seen_devices.add(dev)
        usage = psutil.disk_usage(str(path))
        labels = {"path": str(path)}
        samples += [Sample("host.disk_percent", usage.percent, labels),
                    Sample("host.disk_free_bytes", float(usage.free), labels)]
    return samples


def host_identity() -> str:
    return socket.gethostname()


def _existing_parent(path: Path) -> Path:
    try:
        path = path.resolve()
    except RuntimeError:  # a symlink loop: an OSError like any other unreadable path
        raise OSError(errno.ELOOP, f"symlink loop in {path}") from None
    while not path.exists():
        path = path.parent
    return path
