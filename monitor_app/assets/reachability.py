"""Is a database asset reachable? Probe it, and turn status changes into events."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
from sqlalchemy.orm import Session

from monitor_app.assets import lifecycle
from monitor_app.assets.connection_budget import server_key
from monitor_app.assets.pg_transport import libpq_params
from monitor_app.assets.recent_logins import DATABASES_SQL, RecentLogins
from monitor_app.platform import spread
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset

# A target that keeps failing is probed less often, up to this, so it cannot hog workers.
MAX_BACKOFF_SECONDS = 600


@dataclass
class ProbeResult:
    up: bool
    latency_ms: float
    error: str | None = None
    server_version: str | None = None


def probe_postgres(connection: dict, password: str | None, timeout: float, budget,
                   logins: RecentLogins | None = None) -> ProbeResult:
    """Log in and read the version, in one of the server's budgeted slots (BudgetExhausted if none is free).

    With `logins`, a recent login of the same role on the same server that may enter this
    database answers instead (`recent_logins`), and a login made here is remembered."""
    key = logins.key(connection, password) if logins is not None else None
    if logins is not None and key is not None:
        recent = logins.lookup(key, str(connection.get("database")))
        if recent is not None:
            return ProbeResult(True, recent.latency_ms, server_version=recent.server_version)
    started = time.perf_counter()

    def connect():
        return psycopg2.connect(
            **libpq_params(connection, password), connect_timeout=max(1, int(timeout)), application_name="dbmon",
            options=f"-c statement_timeout={int(timeout * 1000)}",
        )

    try:
        with budget.connection(server_key(connection), "probe", connect) as conn:
            with conn.cursor() as cur:
                cur.execute(DATABASES_SQL)
                version, databases = cur.fetchone()
        latency = (time.perf_counter() - started) * 1000
        if logins is not None and key is not None:
            logins.remember(key, list(databases or []), version, latency)
        return ProbeResult(True, latency, server_version=version)
    except psycopg2.Error as exc:
        if logins is not None and key is not None:
            logins.forget(key)
        return ProbeResult(False, (time.perf_counter() - started) * 1000, _first_line(exc))


def probe_sqlite(connection: dict, timeout: float) -> ProbeResult:
    started = time.perf_counter()
    path = Path(connection["path"])
    if not path.exists():
        return ProbeResult(False, 0.0, f"{path} does not exist")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        try:
            version = conn.execute("SELECT sqlite_version()").fetchone()[0]
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return ProbeResult(False, (time.perf_counter() - started) * 1000, str(exc))
    return ProbeResult(True, (time.perf_counter() - started) * 1000, server_version=version)


def can_probe(asset) -> bool:
    """A PostgreSQL asset discovered without credentials has no database to log into: its
    reachability is its port answering, which container monitoring checks instead."""
    if asset.engine == "postgresql":
        return bool((asset.connection or {}).get("host") and (asset.connection or {}).get("database"))
    return asset.engine == "sqlite"


def probe(asset: Asset, password: str | None, timeout: float, budget, logins: RecentLogins | None = None
          ) -> ProbeResult:
    if asset.engine == "postgresql":
        return probe_postgres(asset.connection, password, timeout, budget, logins)
    if asset.engine == "sqlite":
        return probe_sqlite(asset.connection, timeout)
    return ProbeResult(False, 0.0, f"no probe for engine {asset.engine!r}")


def apply_probe(session: Session, asset: Asset, result: ProbeResult, interval: float, *,
                now: datetime | None = None) -> str | None:
    """Store the outcome; the asset's lifecycle records `asset.up`/`asset.down` only when the
    status changes (and not for a stopped asset). Returns the new status when it changed."""
    now = now or utcnow()
    asset.last_checked_at = now
    details = dict(asset.details or {})
    details["probe"] = {"latency_ms": round(result.latency_ms, 2), "error": result.error,
                        "server_version": result.server_version, "at": now.isoformat()}
    failures = 0 if result.up else int(details.get("consecutive_failures", 0)) + 1
    details["consecutive_failures"] = failures
    asset.details = details
    backoff = min(interval * (2 ** max(0, failures - 1)), max(interval, MAX_BACKOFF_SECONDS))
    # Up: the asset's own slot (platform.spread), so probes of many assets do not bunch up.
    asset.next_check_at = (spread.next_slot(asset.id, interval, now) if result.up
                           else now + timedelta(seconds=backoff))
    if result.up:
        return lifecycle.observe(session, asset, True, f"{asset.name} is reachable ({result.latency_ms:.0f} ms)",
                                 payload={"latency_ms": result.latency_ms, "server_version": result.server_version},
                                 now=now)
    return lifecycle.observe(session, asset, False, f"{asset.name} is unreachable: {result.error}",
                             payload={"error": result.error}, now=now)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
