"""Which charts an asset page shows by default, and how their values read.

The catalogue is one ordered list across engines rather than a list per engine: an asset shows
the entries it has series for, so a PostgreSQL container gets the PostgreSQL charts and the
container's CPU and memory without anyone declaring that combination, and a host gets the host
charts. Any other series of the asset can be added from the page; its unit is guessed from the
naming convention the collectors follow (`_bytes`, `_percent`, `_ratio`, `_seconds`, `_per_second`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ChartSpec:
    metric: str
    title: str
    unit: str  # bytes | bytes_per_s | percent | ratio | seconds | ms | per_s | count
    group: str


CATALOGUE: tuple[ChartSpec, ...] = (
    ChartSpec("pg.transactions_per_second", "Transactions per second", "per_s", "PostgreSQL"),
    ChartSpec("pg.connections", "Connections", "count", "PostgreSQL"),
    ChartSpec("pg.cache_hit_ratio", "Cache hit ratio", "ratio", "PostgreSQL"),
    ChartSpec("pg.wal_bytes_per_second", "WAL written per second", "bytes_per_s", "PostgreSQL"),
    ChartSpec("pg.locks", "Locks held, by mode", "count", "PostgreSQL"),
    ChartSpec("pg.replication_lag_seconds", "Replication lag, per standby", "seconds", "PostgreSQL"),
    ChartSpec("pg.replay_lag_seconds", "Replay lag of this standby", "seconds", "PostgreSQL"),
    ChartSpec("pg.database_size_bytes", "Database size", "bytes", "PostgreSQL"),
    ChartSpec("pgbouncer.clients_active", "Clients active, per pool", "count", "PgBouncer"),
    ChartSpec("pgbouncer.clients_waiting", "Clients waiting, per pool", "count", "PgBouncer"),
    ChartSpec("pgbouncer.transactions_per_second", "Transactions per second", "per_s", "PgBouncer"),
    ChartSpec("sqlite.file_bytes", "Database file size", "bytes", "SQLite"),
    ChartSpec("sqlite.wal_bytes", "WAL file size", "bytes", "SQLite"),
    ChartSpec("sqlite.write_transactions_per_s", "Write transactions per second", "per_s", "SQLite"),
    ChartSpec("sqlite.freelist_ratio", "Free pages", "ratio", "SQLite"),
    ChartSpec("container.cpu_percent", "Container CPU", "percent", "Container"),
    ChartSpec("container.memory_bytes", "Container memory", "bytes", "Container"),
    ChartSpec("host.cpu_percent", "CPU", "percent", "Host"),
    ChartSpec("host.memory_percent", "Memory", "percent", "Host"),
    ChartSpec("host.disk_percent", "Disk used, per path", "percent", "Host"),
    ChartSpec("host.load1", "Load average (1 min)", "count", "Host"),
    ChartSpec("file.bytes", "Watched files, total size", "bytes", "Files"),
)
_BY_METRIC = {spec.metric: spec for spec in CATALOGUE}
_SUFFIX_UNITS = (("_bytes_per_second", "bytes_per_s"), ("_bytes_per_s", "bytes_per_s"), ("_bytes", "bytes"),
                 ("_percent", "percent"), ("_ratio", "ratio"), ("_seconds", "seconds"), ("_ms", "ms"),
                 ("_per_second", "per_s"), ("_per_s", "per_s"))


def spec_for(metric: str) -> ChartSpec:
    """The catalogue's entry, or one made up from the metric's name."""
    known = _BY_METRIC.get(metric)
    if known is not None:
        return known
    unit = next((u for suffix, u in _SUFFIX_UNITS if metric.endswith(suffix)), "count")
    return ChartSpec(metric, metric, unit, "Other")


def default_specs(metrics: set[str]) -> list[ChartSpec]:
    return [spec for spec in CATALOGUE if spec.metric in metrics]


_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _bytes(value: float) -> str:
    size, unit = abs(value), 0
    while size >= 1024 and unit < len(_BINARY) - 1:
        size /= 1024
        unit += 1
    sign = "-" if value < 0 else ""
    return f"{sign}{size:.0f} {_BINARY[unit]}" if unit == 0 else f"{sign}{size:.3g} {_BINARY[unit]}"


def _plain(value: float) -> str:
    if value != 0 and (abs(value) >= 10_000 or value == int(value)):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _duration(seconds: float) -> str:
    if abs(seconds) < 1:
        return f"{seconds * 1000:.3g} ms"
    if abs(seconds) < 120:
        return f"{seconds:.3g} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def format_value(value: float | None, unit: str) -> str:
    """A figure as a person reads it: 1.5 GiB, 12.3 %, 250 ms, 1,204."""
    if value is None or not math.isfinite(value):
        return "no data"
    if unit == "bytes":
        return _bytes(value)
    if unit == "bytes_per_s":
        return _bytes(value) + "/s"
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "seconds":
        return _duration(value)
    if unit == "ms":
        return _duration(value / 1000)
    if unit == "per_s":
        return _plain(value) + "/s"
    return _plain(value)
