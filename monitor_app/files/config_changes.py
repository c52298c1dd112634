"""Config files under a watch: parsed into their secret-free form (kept in the baseline, so the
next version is diffed against it), diffed with the server's own idea of each setting when dbmon
can ask it, and PostgreSQL settings left waiting for a restart turned into an event.

Secrets are replaced by a keyed fingerprint before anything is stored: a changed password shows
as a change, but no stored row, event or API answer holds it. The key is derived from dbmon's
secret key, so fingerprints cannot be checked against guesses without it."""

from __future__ import annotations

import functools
import logging

from monitor_app.access.secret_keys import derive
from monitor_app.assets.config_assets import password_for
from monitor_app.assets.connection_budget import BudgetExhausted
from monitor_app.errors import DbmonError
from monitor_app.files.config_diff import diff_parsed, guess_kind, parse_config_file
from monitor_app.files.pg_server_files import pending_restart, read_server_files
from monitor_app.platform.event_log import record_event
from monitor_app.store.models import Asset
from monitor_app.store.models.files import FileWatch

log = logging.getLogger("dbmon.files")


@functools.lru_cache(maxsize=4)
def _key(secret_key: str) -> bytes:
    return derive(secret_key, b"dbmon file config fingerprints")


def redaction_key(rt) -> bytes:
    return _key(rt.settings.resolved_secret_key())


def parse_and_diff(rt, path: str, previous: dict | None, settings: dict | None) -> tuple[list | None, dict | None]:
    """(the diff against `previous`, the parsed form to keep); (None, None) for a file that is not
    a config format dbmon reads, or cannot be read now (the change is still reported as such)."""
    kind = guess_kind(path)
    if kind is None:
        return None, None
    try:
        parsed = parse_config_file(path, kind, key=redaction_key(rt))
    except OSError as exc:
        log.info("cannot read config file %s: %s", path, exc)
        return None, previous
    empty = {"kind": kind, "entries": [], "errors": [], "files": []}
    return diff_parsed(previous or empty, parsed, pg_settings=settings), parsed


def server_settings(rt, watch_id: int) -> dict | None:
    """pg_settings of the PostgreSQL asset whose config files the watch holds, or None when there
    is none or it cannot be asked now."""
    with rt.store.session() as s:
        watch = s.get(FileWatch, watch_id)
        if watch is None or watch.asset_id is None or "config" not in (watch.kinds or []):
            return None
        asset = s.get(Asset, watch.asset_id)
        if asset is None or asset.engine != "postgresql" or asset.status != "up":
            return None  # a server the probe does not find up is not asked: it could hold the scan
        connection, password = dict(asset.connection), password_for(asset, rt.credentials) if asset.secret else None
    try:
        return read_server_files(connection, password, budget=rt.connection_budget,
                                 timeout=min(rt.settings.probe_timeout, 3.0))["settings"]
    except (DbmonError, BudgetExhausted) as exc:
        log.info("cannot read pg_settings for watch %s: %s", watch_id, exc)
        return None


def pending_restart_events(s, watch, settings: dict) -> int:
    """One event when settings start waiting for a restart; none while the same ones wait."""
    pending = pending_restart(settings)
    before = set(watch.pending_restart or [])
    watch.pending_restart = pending
    new = [name for name in pending if name not in before]
    if not new:
        return 0
    record_event(s, type="file.config_pending_restart", severity="warning", asset_id=watch.asset_id,
                 summary=f"{len(pending)} setting(s) wait for a restart: {', '.join(pending[:10])}",
                 payload={"watch_id": watch.id, "watch": watch.path, "pending_restart": pending, "new": new})
    return 1
