"""Is a database asset reachable? Probe it, and turn status changes into events.

A MySQL or MariaDB login also reports its session's TLS: whether it was used, and the server's
certificate, judged and recorded exactly as the container port probe records one
(`details.tls[host:port]`, `tls.*` events with the same dedupe keys), so a config asset's
certificate expiry is watched without a container, and a container's is not reported twice.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
from sqlalchemy.orm import Session

from monitor_app.assets import lifecycle, mysql_transport
from monitor_app.assets.certificates import DEFAULT_TLS_WARN_DAYS, Certificate, parse_certificate, tls_findings
from monitor_app.assets.connection_budget import server_key
from monitor_app.assets.pg_transport import libpq_params
from monitor_app.assets.recent_logins import DATABASES_SQL, RecentLogins
from monitor_app.platform import spread
from monitor_app.platform.event_log import record_event
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
    # Engines whose login reports its TLS (MySQL, MariaDB): used, version, cipher, verified.
    tls: dict | None = None
    certificate: Certificate | None = None
    endpoint: str | None = None  # host:port the certificate belongs to


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


def probe_mysql(connection: dict, password: str | None, timeout: float, budget) -> ProbeResult:
    """Log into a MySQL or MariaDB server (TLS per `mysql_transport`) and read its version, in one
    of the server's budgeted slots (BudgetExhausted if none is free)."""
    started = time.perf_counter()
    sslmode = mysql_transport.effective_sslmode(connection)
    try:
        with budget.connection(server_key(connection, "mysql"), "probe",
                               lambda: mysql_transport.connect(connection, password, timeout=timeout),
                               engine="mysql") as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                row = cur.fetchone()
            tls = mysql_transport.tls_state(conn, sslmode)
            der = mysql_transport.peer_certificate(conn)
    except mysql_transport.DRIVER_ERRORS as exc:
        return ProbeResult(False, (time.perf_counter() - started) * 1000, mysql_transport.describe_error(exc))
    latency = (time.perf_counter() - started) * 1000
    certificate = None
    if der:
        try:
            certificate = parse_certificate(der)
        except ValueError as exc:
            tls["certificate_error"] = str(exc)[:200]
    version = str(row[0])[:200] if row and row[0] is not None else None
    endpoint = f"{connection.get('host')}:{connection.get('port') or mysql_transport.DEFAULT_PORT}"
    return ProbeResult(True, latency, server_version=version, tls=tls, certificate=certificate, endpoint=endpoint)


def can_probe(asset) -> bool:
    """A PostgreSQL asset discovered without credentials has no database to log into: its
    reachability is its port answering, which container monitoring checks instead. MySQL and
    MariaDB log into the server, so an account is what they need (the database is optional)."""
    connection = asset.connection or {}
    if asset.engine == "postgresql":
        return bool(connection.get("host") and connection.get("database"))
    if asset.engine in mysql_transport.MYSQL_ENGINES:
        return bool(connection.get("host") and connection.get("user"))
    return asset.engine == "sqlite"


def probe(asset: Asset, password: str | None, timeout: float, budget, logins: RecentLogins | None = None
          ) -> ProbeResult:
    if asset.engine == "postgresql":
        return probe_postgres(asset.connection, password, timeout, budget, logins)
    if asset.engine == "sqlite":
        return probe_sqlite(asset.connection, timeout)
    if asset.engine in mysql_transport.MYSQL_ENGINES:
        return probe_mysql(asset.connection, password, timeout, budget)
    return ProbeResult(False, 0.0, f"no probe for engine {asset.engine!r}")


def apply_probe(session: Session, asset: Asset, result: ProbeResult, interval: float, *,
                now: datetime | None = None, tls_warn_days: Sequence[int] = DEFAULT_TLS_WARN_DAYS) -> str | None:
    """Store the outcome; the asset's lifecycle records `asset.up`/`asset.down` only when the
    status changes (and not for a stopped asset). Returns the new status when it changed."""
    now = now or utcnow()
    asset.last_checked_at = now
    details = dict(asset.details or {})
    details["probe"] = {"latency_ms": round(result.latency_ms, 2), "error": result.error,
                        "server_version": result.server_version, "at": now.isoformat()}
    if result.tls is not None:
        details["probe"]["tls"] = result.tls
        if result.up and result.endpoint and asset.status != "gone":
            details["tls"] = _record_certificate(session, asset, dict(details.get("tls") or {}), result,
                                                 tls_warn_days, now)
    failures = 0 if result.up else int(details.get("consecutive_failures", 0)) + 1
    details["consecutive_failures"] = failures
    asset.details = details
    backoff = min(interval * (2 ** max(0, failures - 1)), max(interval, MAX_BACKOFF_SECONDS))
    # Up: the asset's own slot (platform.spread), so probes of many assets do not bunch up.
    asset.next_check_at = (spread.next_slot(asset.id, interval, now) if result.up
                           else now + timedelta(seconds=backoff))
    if result.up:
        payload = {"latency_ms": result.latency_ms, "server_version": result.server_version}
        if result.tls is not None:
            payload["tls"] = result.tls.get("used")
        return lifecycle.observe(session, asset, True, f"{asset.name} is reachable ({result.latency_ms:.0f} ms)",
                                 payload=payload, now=now)
    return lifecycle.observe(session, asset, False, f"{asset.name} is unreachable: {result.error}",
                             payload={"error": result.error}, now=now)


def _record_certificate(session: Session, asset: Asset, tls: dict, result: ProbeResult,
                        thresholds: Sequence[int], now: datetime) -> dict:
    """`tls.*` events for the login's certificate; returns the endpoint map with it stored.
    A session that used TLS but whose certificate could not be read says nothing about removal."""
    endpoint, cert = str(result.endpoint), result.certificate
    if cert is None and (result.tls or {}).get("used"):
        return tls
    for f in tls_findings(asset.name, endpoint, tls.get(endpoint), cert, thresholds):
        record_event(session, type=f.type, severity=f.severity, asset_id=asset.id, summary=f.summary,
                     payload=f.payload, dedupe_key=f.dedupe_key and f"{asset.id}:{f.dedupe_key}")
    if cert is None:
        tls.pop(endpoint, None)
    else:
        tls[endpoint] = {**cert.to_dict(), "checked_at": now.isoformat()}
    return tls


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
