"""What `POST /api/v1/scans` and `dbmon scan KIND` can start: a scan kind names one task.

`asset` says whether the scan targets one asset: "required", "optional" (all
when omitted) or "none".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ScanKind:
    task: str
    asset: Literal["required", "optional", "none"] = "none"
    description: str = ""


SCAN_KINDS: dict[str, ScanKind] = {
    "host": ScanKind("metrics.host_sample", "none", "sample host CPU, memory and disk"),
    "reachability": ScanKind("assets.check_reachability", "optional",
                             "connect to database assets and record up/down"),
    "discovery": ScanKind("containers.reconcile", "none", "list and inspect Docker containers, register databases"),
    "config": ScanKind("assets.sync_config", "none", "load assets from the config file"),
    "schema": ScanKind("schema.check", "required", "snapshot a database schema and report changes"),
    "pg-fast": ScanKind("metrics.pg_fast", "required", "poll a PostgreSQL asset's fast-tier metrics now"),
    "sqlite-metrics": ScanKind("metrics.sqlite", "required", "poll an SQLite asset's file metrics now"),
    "pg-medium": ScanKind("metrics.pg_medium", "required",
                          "poll a PostgreSQL asset's medium-tier metrics (statements, checkpointer, archiver, vacuums) now"),
    "pg-slow": ScanKind("metrics.pg_slow", "required",
                        "poll a PostgreSQL asset's slow-tier metrics (sizes, vacuum health, unused indexes, settings) now"),
    "mysql-metrics": ScanKind("metrics.mysql", "required",
                              "poll a MySQL or MariaDB asset's status, InnoDB, replication and statements now"),
    "pgbouncer-metrics": ScanKind("metrics.pgbouncer", "required", "read a PgBouncer asset's pools and averages now"),
    "container-metrics": ScanKind("metrics.container", "required", "read a database container's Docker stats now"),
    "files": ScanKind("files.scan", "none", "rescan every watched path against its baseline and report changes"),
    "file-watches": ScanKind("files.sync_watches", "none", "work out which paths to watch (config, assets) and baseline new ones"),
    "posture": ScanKind("posture.check", "optional",
                        "check PostgreSQL security posture (pg_hba, ssl, roles, version...) and report changes"),
}
