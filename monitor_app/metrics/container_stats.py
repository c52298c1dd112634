"""What the Docker engine says one container uses: CPU, memory, block and network I/O, restarts.

One `stats` call with `one_shot` (the engine answers from its last reading instead of waiting a
second for a second one) and one `inspect` per poll. CPU and I/O arrive as counters; their rates
come from two polls (`counter_rates`), whose life is the container's start: a restart resets the
cgroup's counters and drops that interval. The engine's answers are hostile input like any other:
a field missing or of the wrong type is left out, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ContainerReading:
    running: bool
    started: float | None  # epoch seconds of the current start: the counters' life
    gauges: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)


def read_container(api, container_id: str) -> ContainerReading:
    """`api` is a docker-py APIClient; its errors (NotFound, APIError) reach the caller."""
    inspected = _dict(api.inspect_container(container_id))
    state = _dict(inspected.get("State"))
    running = state.get("Running") is True
    gauges = {"container.oom_killed": 1.0 if state.get("OOMKilled") is True else 0.0}
    restarts = _number(inspected.get("RestartCount"))
    if restarts is not None:
        gauges["container.restarts"] = restarts
    started = _epoch(state.get("StartedAt"))
    if not running:
        return ContainerReading(False, started, gauges)
    stats = _dict(api.stats(container_id, stream=False, one_shot=True))
    cpu, memory = _dict(stats.get("cpu_stats")), _dict(stats.get("memory_stats"))
    counters = {}
    total, system = _number(_dict(cpu.get("cpu_usage")).get("total_usage")), _number(cpu.get("system_cpu_usage"))
    if total is not None and system is not None:
        counters["cpu_ns"], counters["system_cpu_ns"] = total, system
    cpus = _number(cpu.get("online_cpus"))
    if cpus:
        gauges["container.online_cpus"] = cpus
    usage, limit = _number(memory.get("usage")), _number(memory.get("limit"))
    if usage is not None:
        # As `docker stats` shows it: the page cache the kernel can drop is not counted.
        inactive = _dict(memory.get("stats"))
        cache = _number(inactive.get("total_inactive_file", inactive.get("inactive_file"))) or 0.0
        gauges["container.memory_bytes"] = max(usage - cache, 0.0)
        if limit:
            gauges["container.memory_limit_bytes"] = limit
            gauges["container.memory_percent"] = 100.0 * gauges["container.memory_bytes"] / limit
    pids = _number(_dict(stats.get("pids_stats")).get("current"))
    if pids is not None:
        gauges["container.pids"] = pids
    for op, total_bytes in _block_io(_dict(stats.get("blkio_stats"))).items():
        counters[f"block_{op}_bytes"] = total_bytes
    rx = tx = 0.0
    networks = stats.get("networks")
    for iface in (networks.values() if isinstance(networks, dict) else ()):
        rx += _number(_dict(iface).get("rx_bytes")) or 0.0
        tx += _number(_dict(iface).get("tx_bytes")) or 0.0
    if isinstance(networks, dict) and networks:
        counters["network_rx_bytes"], counters["network_tx_bytes"] = rx, tx
    return ContainerReading(True, started, gauges, counters)


def rates(deltas: dict[str, float], seconds: float, online_cpus: float | None) -> dict[str, float]:
    """Per-second rates of an interval; CPU as `docker stats` shows it (100 % per CPU)."""
    out = {}
    if "cpu_ns" in deltas and deltas.get("system_cpu_ns"):
        out["container.cpu_percent"] = 100.0 * deltas["cpu_ns"] / deltas["system_cpu_ns"] * (online_cpus or 1.0)
    for name in ("block_read_bytes", "block_write_bytes", "network_rx_bytes", "network_tx_bytes"):
        if name in deltas:
            out[f"container.{name}_per_s"] = deltas[name] / seconds
    return out


def _block_io(blkio: dict) -> dict[str, float]:
    totals = {"read": 0.0, "write": 0.0}
    entries = blkio.get("io_service_bytes_recursive")
    if not isinstance(entries, list):
        return {}
    for entry in entries:
        op = str(_dict(entry).get("op", "")).lower()
        value = _number(_dict(entry).get("value"))
        if op in totals and value is not None:
            totals[op] += value
    return totals


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _epoch(value) -> float | None:
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    try:  # nanoseconds and a Z: fromisoformat wants at most microseconds and an offset
        head, _, rest = value.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{head}.{rest[:6] or '0'}+00:00").timestamp()
    except ValueError:
        return None
