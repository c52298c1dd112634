"""Host resource sampling: CPU, memory, swap, load, disk usage of the paths that matter, and the
CPU and memory of the database server processes running on the host.

Disk I/O and network counters are read raw (`io_counters`): the task turns two samples into
rates, dropping the interval across a reboot. A database process's CPU is measured over the same
short window as the host's, so the two add up; its memory is the resident set, which counts
shared memory (PostgreSQL's shared buffers) once per process that touched it.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Sample:
    name: str
    value: float
    labels: dict = field(default_factory=dict)


# Process names of database servers and poolers, by the engine they are reported under.
DATABASE_PROCESSES = {"postgres": "postgresql", "postmaster": "postgresql", "mysqld": "mysql", "mariadbd": "mariadb",
                      "redis-server": "redis", "mongod": "mongodb", "pgbouncer": "pgbouncer"}
MAX_PROCESSES = 5000


def sample_host(disk_paths: list[Path], cpu_window: float = 0.2) -> list[Sample]:
    processes = _database_processes()
    samples = [Sample("host.cpu_percent", psutil.cpu_percent(interval=cpu_window))]
    samples += _process_usage(processes)
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


def _database_processes() -> list[tuple[str, psutil.Process]]:
    found = []
    for count, proc in enumerate(psutil.process_iter(["name"])):
        if count >= MAX_PROCESSES:
            break
        engine = DATABASE_PROCESSES.get(proc.info.get("name") or "")
        if engine is None:
            continue
        try:
            proc.cpu_percent(None)  # the start of the window host.cpu_percent measures
        except psutil.Error:
            continue
        found.append((engine, proc))
    return found


def _process_usage(processes: list[tuple[str, psutil.Process]]) -> list[Sample]:
    """Per engine: processes, CPU (percent of one core, summed) and resident memory."""
    totals: dict[str, list[float]] = {}
    for engine, proc in processes:
        try:
            cpu, rss = proc.cpu_percent(None), float(proc.memory_info().rss)
        except psutil.Error:  # exited during the window
            continue
        entry = totals.setdefault(engine, [0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += cpu
        entry[2] += rss
    out = []
    for engine, (count, cpu, rss) in sorted(totals.items()):
        labels = {"engine": engine}
        out += [Sample("host.db_processes", count, labels), Sample("host.db_cpu_percent", cpu, labels),
                Sample("host.db_memory_bytes", rss, labels)]
    return out


def io_counters() -> dict[str, float]:
    """Raw disk and network counters of the whole host (physical disks as the kernel counts them)."""
    counters: dict[str, float] = {}
    disk = psutil.disk_io_counters(perdisk=False)
    if disk is not None:
        counters.update(disk_read_bytes=disk.read_bytes, disk_write_bytes=disk.write_bytes,
                        disk_reads=disk.read_count, disk_writes=disk.write_count)
        if hasattr(disk, "busy_time"):
            counters["disk_busy_ms"] = disk.busy_time
    net = psutil.net_io_counters(pernic=False)
    if net is not None:
        counters.update(net_received_bytes=net.bytes_recv, net_sent_bytes=net.bytes_sent,
                        net_errors=net.errin + net.errout, net_dropped=net.dropin + net.dropout)
    return {name: float(value) for name, value in counters.items()}


def io_rates(deltas: dict[str, float], seconds: float) -> list[Sample]:
    out = [Sample(f"host.{name}_per_second", deltas[name] / seconds) for name in
           ("disk_read_bytes", "disk_write_bytes", "disk_reads", "disk_writes", "net_received_bytes", "net_sent_bytes")
           if name in deltas]
    if "disk_busy_ms" in deltas:  # share of the interval the disks were busy
        out.append(Sample("host.disk_busy_ratio", min(1.0, deltas["disk_busy_ms"] / 1000 / seconds)))
    out += [Sample(f"host.{name}_in_interval", deltas[name]) for name in ("net_errors", "net_dropped") if name in deltas]
    return out


def _existing_parent(path: Path) -> Path:
    try:
        path = path.resolve()
    except RuntimeError:  # a symlink loop: an OSError like any other unreadable path
        raise OSError(errno.ELOOP, f"symlink loop in {path}") from None
    while not path.exists():
        path = path.parent
    return path
