"""Which paths should be watched: the config file's `watch:` entries, and with `files.auto_watch`
what dbmon can see of its assets on this host.

A watch entry in the file wins over a derived watch of the same path, so an operator can
re-declare a data directory as `config` or give it globs without two watches reporting twice.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass, field

from monitor_app.files.config import DEFAULT_EVENTS, EVENT_NAMES, WatchConfig

# Where the official images keep their configuration (a bind mount there is a config watch).
CONFIG_MOUNTS = ("/etc/postgresql", "/etc/mysql", "/etc/mysql/conf.d", "/usr/local/etc/redis", "/etc/redis",
                 "/etc/my.cnf", "/etc/my.cnf.d")


@dataclass(frozen=True)
class DesiredWatch:
    source: str  # config | postgresql | sqlite | docker
    path: str
    asset_id: int | None
    kinds: tuple[str, ...]
    spec: dict = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        # The kinds are part of it: a data directory and the config files in it are two watches.
        raw = f"{self.source}\0{self.asset_id or ''}\0{','.join(self.kinds)}\0{self.path}".encode(
            "utf-8", "surrogateescape")
        return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


def _spec(kinds: tuple[str, ...], *, recursive: bool = True, include=(), exclude=()) -> dict:
    events = sorted({e for kind in kinds for e in DEFAULT_EVENTS[kind]}, key=EVENT_NAMES.index)
    return {"recursive": recursive, "include": list(include), "exclude": list(exclude), "events": events,
            "backup": None}


def from_config(watches: list[WatchConfig], asset_ids: dict[str, int]) -> list[DesiredWatch]:
    # Resolved: a symlinked data directory is watched and keyed as the tree it points to.
    return [DesiredWatch("config", os.path.realpath(w.path), asset_ids.get(w.asset) if w.asset else None,
                         tuple(w.kinds), w.spec()) for w in watches]


def _single_files(source: str, asset_id: int, paths: list[str], kinds: tuple[str, ...]) -> list[DesiredWatch]:
    """Files watched through their directory (editors replace a file by rename), one watch per
    directory with the names as exact globs."""
    by_dir: dict[str, list[str]] = {}
    for path in paths:
        by_dir.setdefault(os.path.dirname(path), []).append(glob.escape(os.path.basename(path)))
    return [DesiredWatch(source, directory, asset_id, kinds, _spec(kinds, recursive=False, include=sorted(names)))
            for directory, names in sorted(by_dir.items())]


def for_sqlite(asset_id: int, path: str) -> list[DesiredWatch]:
    path = os.path.normpath(path)
    return _single_files("sqlite", asset_id, [path, path + "-wal", path + "-journal"], ("data",))


# What a PostgreSQL server writes all day under its data directory, left out of the derived `data`
# watch: every database's relation files (base/<oid>/..., about 300 a database, and the sort files
# in base/pgsql_tmp), the shared catalogs and pg_control in global/, and the transaction, statistics
# and replication state (the same directories in PostgreSQL 13 to 17). With a thousand databases
# these were 300,000 entries whose writes kept the watch rescanning. The directories themselves stay,
# so a changed mode or owner of base/16384 is still reported; so do the top-level files. fnmatch's
# `*` matches `/` too: `base/*/*` is everything two or more levels under base, never base/16384
# itself, and `global/*` is everything under global. pg_wal is its own watch (kind wal).
PG_SERVER_WRITTEN = ("pg_wal", "base/*/*", "global/*", "pg_commit_ts/*", "pg_dynshmem/*", "pg_logical/*",
                     "pg_multixact/*", "pg_notify/*", "pg_replslot/*", "pg_serial/*", "pg_snapshots/*",
                     "pg_stat/*", "pg_stat_tmp/*", "pg_subtrans/*", "pg_twophase/*", "pg_xact/*")


def for_postgresql(asset_id: int, locations: dict[str, str]) -> list[DesiredWatch]:
    out = []
    data = locations.get("data_directory")
    config_files = [locations[k] for k in ("config_file", "hba_file", "ident_file") if locations.get(k)]
    if data:
        data = os.path.normpath(data)
        out.append(DesiredWatch("postgresql", data, asset_id, ("data",), _spec(("data",), exclude=PG_SERVER_WRITTEN)))
        out.append(DesiredWatch("postgresql", os.path.join(data, "pg_wal"), asset_id, ("wal",), _spec(("wal",))))
        config_files.append(os.path.join(data, "postgresql.auto.conf"))
    out += _single_files("postgresql", asset_id, [os.path.normpath(p) for p in config_files], ("config",))
    return out


def for_container(asset_id: int, details: dict) -> list[DesiredWatch]:
    out = []
    seen = set()
    for d in details.get("data_dirs") or []:
        host_path = d.get("host_path")
        if isinstance(host_path, str) and host_path.startswith("/") and host_path not in seen:
            seen.add(host_path)
            out.append(DesiredWatch("docker", os.path.normpath(host_path), asset_id, ("data",), _spec(("data",))))
    for m in details.get("mounts") or []:
        source, dest = m.get("source"), str(m.get("destination") or "").rstrip("/")
        if isinstance(source, str) and source.startswith("/") and source not in seen and dest in CONFIG_MOUNTS:
            seen.add(source)
            out.append(DesiredWatch("docker", os.path.normpath(source), asset_id, ("config",), _spec(("config",))))
    return out


def merge(config_watches: list[DesiredWatch], derived: list[DesiredWatch]) -> list[DesiredWatch]:
    declared = {w.path for w in config_watches}
    # A derived watch on a declared path is dropped whatever its kind: the operator said how to watch it.
    out: dict[str, DesiredWatch] = {w.key: w for w in config_watches}
    for w in derived:
        if w.path not in declared:
            out.setdefault(w.key, w)
    return list(out.values())
