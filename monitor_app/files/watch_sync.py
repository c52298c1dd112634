"""Keep the stored watches equal to the wanted ones: the body of `files.sync_watches`.

A new watch starts `pending` and gets a first scan that only records its baseline (nothing
existing is news). A watch no longer wanted is marked `removed` and its baseline dropped; its
changes stay as history. A PostgreSQL server that cannot be asked where its files are keeps the
watches it had: an outage of the server must not stop the watching of its files.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select

from monitor_app.assets.config_assets import password_for
from monitor_app.assets.connection_budget import BudgetExhausted, server_key
from monitor_app.errors import DbmonError
from monitor_app.files import watch_targets
from monitor_app.files.pg_server_files import read_server_files
from monitor_app.posture.facts import is_local_host
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset
from monitor_app.store.models.files import FileEntry, FileWatch

log = logging.getLogger("dbmon.files")
# Reading two settings views takes milliseconds; a server slower than this is not asked this time.
ASK_TIMEOUT = 3.0


def desired_watches(rt) -> tuple[list[watch_targets.DesiredWatch], set[int]]:
    """The wanted watches, and the assets whose derived watches could not be worked out this time."""
    config = rt.config
    with rt.store.session() as s:
        assets = s.execute(select(Asset.id, Asset.name, Asset.engine, Asset.source, Asset.connection, Asset.details,
                                  Asset.secret, Asset.status).where(Asset.status != "gone")).all()
    by_name = {a.name: a.id for a in assets if a.source == "config"}
    declared = watch_targets.from_config(config.watch, by_name)
    derived: list[watch_targets.DesiredWatch] = []
    unknown: set[int] = set()
    if config.files.auto_watch:
        servers: dict[str, list] = {}
        for a in assets:
            # A container's files are its host mounts; the paths its server reports are inside it.
            if a.engine == "postgresql" and a.source != "docker" and is_local_host((a.connection or {}).get("host")):
                servers.setdefault(server_key(a.connection), []).append(a)
                continue
            derived += _derived(a)
        for same_server in servers.values():
            same_server.sort(key=lambda a: a.id)
            answering = [a for a in same_server if a.status == "up"]
            if not answering:
                # Only a server the reachability probe found up is asked: a hung one would hold a
                # worker slot for the whole timeout. Its watches stay as they were meanwhile.
                unknown.add(same_server[0].id)
                continue
            found, failed = _server_watches(rt, same_server[0].id, answering)
            derived += found
            unknown |= failed
    return watch_targets.merge(declared, derived), unknown


def _derived(a) -> list[watch_targets.DesiredWatch]:
    connection = a.connection or {}
    if a.engine == "sqlite" and connection.get("path"):
        return watch_targets.for_sqlite(a.id, connection["path"])
    if a.source == "docker":
        return watch_targets.for_container(a.id, a.details or {})
    return []


def _server_watches(rt, owner: int, assets: list) -> tuple[list[watch_targets.DesiredWatch], set[int]]:
    """A server's files are watched once, under its first asset (`owner`, the lowest id, so it does
    not flip between syncs), however many of its databases are assets: asked through the first of
    its up assets that answers (three at most: a server that refuses one login refuses the next)."""
    for a in assets[:3]:
        password = password_for(a, rt.credentials) if a.secret else None
        try:
            found = read_server_files(a.connection, password, budget=rt.connection_budget,
                                      timeout=min(rt.settings.probe_timeout, ASK_TIMEOUT))
        except (DbmonError, BudgetExhausted) as exc:
            log.info("cannot tell where asset %s keeps its files: %s", a.name, exc)
            continue
        return watch_targets.for_postgresql(owner, found["locations"]), set()
    return [], {owner}


def apply_watches(store, desired: list[watch_targets.DesiredWatch], unknown_assets: set[int],
                  now: datetime | None = None) -> dict:
    """Store `desired`; returns the ids of watches that need a (first) scan and those removed."""
    now = now or utcnow()
    wanted = {w.key: w for w in desired}
    fresh, removed = [], []
    with store.session() as s:
        stored = {w.key: w for w in s.scalars(select(FileWatch))}
        for key, w in wanted.items():
            row = stored.get(key)
            if row is None:
                row = FileWatch(key=key, path=w.path, source=w.source, asset_id=w.asset_id, kinds=list(w.kinds),
                                spec=w.spec, status="pending", errors={}, created_at=now, updated_at=now)
                s.add(row)
                s.flush()
                fresh.append(row.id)
                continue
            if row.status == "removed" or row.kinds != list(w.kinds) or row.spec != w.spec:
                # A changed spec changes what the baseline holds: start it again rather than report
                # everything that newly matches as created.
                s.execute(delete(FileEntry).where(FileEntry.watch_id == row.id))
                row.kinds, row.spec, row.status, row.baseline_ready = list(w.kinds), w.spec, "pending", False
                row.updated_at = now
                fresh.append(row.id)
        for key, row in stored.items():
            keep = row.source != "config" and row.asset_id in unknown_assets
            if key in wanted or row.status == "removed" or keep:
                continue
            s.execute(delete(FileEntry).where(FileEntry.watch_id == row.id))
            row.status, row.status_detail, row.baseline_ready, row.updated_at = "removed", "no longer wanted", False, now
            removed.append(row.id)
    return {"baseline": fresh, "removed": removed, "watched": len(wanted)}


def sync(rt, now: datetime | None = None) -> dict:
    desired, unknown = desired_watches(rt)
    return apply_watches(rt.store, desired, unknown, now)
