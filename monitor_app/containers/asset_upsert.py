"""Database containers as assets: registered, updated on change, gone on destroy, revived on return.

An asset is keyed by container *name* (source "docker"), not id: `docker compose up`
recreates a container under a new id, and the database it holds should keep its
history (baselines, metrics, events) rather than become a stranger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.assets import lifecycle
from monitor_app.containers.identify import ENGINES, Identification
from monitor_app.containers.inventory import ContainerRecord
from monitor_app.access.credential_box import CredentialBox
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset
from monitor_app.store.models.containers import ContainerState

SOURCE = "docker"
# Where each engine keeps its data inside the container; a host mount there is the data directory.
DATA_DIRS = {
    "postgresql": ("/var/lib/postgresql/data", "/var/lib/postgresql", "/bitnami/postgresql", "/home/postgres/pgdata"),
    "mysql": ("/var/lib/mysql", "/bitnami/mysql"), "mariadb": ("/var/lib/mysql", "/bitnami/mariadb"),
    "mongodb": ("/data/db", "/bitnami/mongodb"), "redis": ("/data", "/bitnami/redis"),
    "sqlserver": ("/var/opt/mssql",), "clickhouse": ("/var/lib/clickhouse",), "cockroachdb": ("/cockroach/cockroach-data",),
    "cassandra": ("/var/lib/cassandra",), "elasticsearch": ("/usr/share/elasticsearch/data",),
    "opensearch": ("/usr/share/opensearch/data",), "influxdb": ("/var/lib/influxdb2", "/var/lib/influxdb"),
    "couchdb": ("/opt/couchdb/data",), "neo4j": ("/data",),
}
# Fields whose change is worth an `asset.changed` event (health and state have their own events).
WATCHED = ("engine", "image", "endpoints", "networks", "mounts", "restart_policy", "labels")


@dataclass
class Credential:
    """Connection fields (no password) and the password, resolved from config or labels."""

    user: str
    database: str | None  # None: a MySQL or MariaDB login to the server, no default database
    sslmode: str | None
    password: str | None
    rule: str  # which config rule or label supplied it, for the record
    insecure: bool = False  # only a config rule may set it, never a label
    sslrootcert: str | None = None


@dataclass
class Upserted:
    state: ContainerState
    asset: Asset | None = None
    created: bool = False
    revived: bool = False
    changed: list[str] = field(default_factory=list)


def endpoints(record: ContainerRecord, engine: str | None) -> list[dict]:
    """host:port pairs dbmon can reach each service port on, best first."""
    wanted = ENGINES[engine].ports if engine in ENGINES else frozenset()
    label_port = record.labels.get("dbmon.port", "")
    out: list[dict] = []
    if label_port.isdigit():
        out.append({"host": "127.0.0.1" if record.network_mode == "host" else _container_ip(record) or "127.0.0.1",
                    "port": int(label_port), "container_port": int(label_port), "via": "label dbmon.port"})
    for p in record.published_ports:
        if p["proto"] == "tcp":
            # A wildcard binding is reached on loopback; this compares, it binds nothing.
            host = p["host_ip"] if p["host_ip"] not in ("0.0.0.0", "::", "") else "127.0.0.1"  # nosec B104
            out.append({"host": host, "port": p["host_port"], "container_port": p["port"], "via": "published"})
    if record.network_mode == "host":
        # EXPOSE says nothing about the port a host-network server was told to use: trust the sockets.
        # Readable sockets but none listening: not up yet, and EXPOSE would point at some other
        # process on the host (e.g. the host's own PostgreSQL on 5432).
        ports = record.listening_ports if record.proc_readable else record.exposed_ports
        for port in ports if record.status == "running" else ():
            out.append({"host": "127.0.0.1", "port": port, "container_port": port, "via": "host network"})
    else:
        ip = _container_ip(record)
        if ip:
            for port in sorted(set(record.exposed_ports) | set(record.listening_ports)):
                out.append({"host": ip, "port": port, "container_port": port, "via": "container ip"})
    seen, unique = set(), []
    for ep in sorted(out, key=lambda e: (e["via"] != "label dbmon.port", e["container_port"] not in wanted)):
        if (ep["host"], ep["port"]) not in seen:
            seen.add((ep["host"], ep["port"]))
            unique.append(ep)
    return unique


def _container_ip(record: ContainerRecord) -> str:
    return next((n["ip"] for n in record.networks.values() if n.get("ip")), "")


def data_dirs(record: ContainerRecord, engine: str | None) -> list[dict]:
    known = DATA_DIRS.get(engine or "", ())
    dirs = []
    for m in record.mounts:
        if not m.get("source") or m.get("type") not in ("bind", "volume"):
            continue
        dest = m["destination"].rstrip("/")
        if dest in known or any(k.startswith(dest + "/") for k in known) or (not known and m.get("rw")):
            dirs.append({"host_path": m["source"], "container_path": m["destination"], "type": m["type"]})
    if not dirs:  # a custom layout: any writable host mount may hold the data
        dirs = [{"host_path": m["source"], "container_path": m["destination"], "type": m["type"]}
                for m in record.mounts if m.get("rw") and m.get("source") and m.get("type") in ("bind", "volume")]
    return dirs


def asset_fields(record: ContainerRecord, ident: Identification) -> dict:
    eps = endpoints(record, ident.engine)
    return {
        "container_id": record.id, "image": record.image, "image_id": record.image_id, "engine": ident.engine,
        "endpoints": eps, "networks": record.networks, "network_mode": record.network_mode,
        "mounts": record.mounts, "data_dirs": data_dirs(record, ident.engine),
        "restart_policy": record.restart_policy, "restart_count": record.restart_count,
        "health": record.health, "state": record.status, "labels": record.labels,
        "identification": {"confidence": ident.confidence, "reasons": ident.reasons},
    }


def _connection(details: dict, credential: Credential | None) -> dict:
    first = (details.get("endpoints") or [None])[0]
    conn = {"host": first["host"], "port": first["port"]} if first else {}
    if credential and first:
        conn.update(user=credential.user, database=credential.database, sslmode=credential.sslmode,
                    sslrootcert=credential.sslrootcert, insecure=credential.insecure)
    return conn


class AssetPresence(Enum):
    """Where the asset named after a container stands before this observation."""

    ABSENT = "absent"  # never registered
    LIVE = "live"
    GONE = "gone"  # its container was removed or stopped being a database


@dataclass
class _Observation:
    """One inspect result of a container, with what a transition needs to act on it."""

    session: Session
    record: ContainerRecord
    ident: Identification
    box: CredentialBox | None
    credential: Credential | None
    now: datetime
    result: Upserted
    asset: Asset | None


def upsert(session: Session, record: ContainerRecord, ident: Identification, *, box=None,
           credential: Credential | None = None, now: datetime | None = None) -> Upserted:
    """Store what the engine says about one container; register, update or revive its asset."""
    now = now or utcnow()
    state = session.scalar(select(ContainerState).where(ContainerState.container_id == record.id))
    if state is None:
        state = ContainerState(container_id=record.id, first_seen_at=now, last_event_nano=0, restart_count=0)
        session.add(state)
    state.name, state.image, state.record = record.name, record.image, record.to_dict()
    state.engine, state.is_database = ident.engine, ident.is_database
    state.confidence, state.reasons = ident.confidence, ident.reasons
    state.status, state.last_seen_at, state.gone_at = record.status, now, None
    result = Upserted(state)

    asset = session.scalar(select(Asset).where(Asset.source == SOURCE, Asset.external_id == record.name))
    obs = _Observation(session, record, ident, box, credential, now, result, asset)
    asset = _TRANSITIONS[(_presence(asset), ident.is_database)](obs)
    if asset is not None:
        state.asset_id = asset.id
        result.asset = asset
    session.flush()
    return result


def _presence(asset: Asset | None) -> AssetPresence:
    if asset is None:
        return AssetPresence.ABSENT
    return AssetPresence.GONE if asset.status == "gone" else AssetPresence.LIVE


def _ignore(obs: _Observation) -> None:
    """Not a database, and no live asset to take back."""
    return None


def _retire(obs: _Observation) -> None:
    """A live asset whose container is no longer identified as a database."""
    asset, record = obs.asset, obs.record
    # Another container may own the asset under the same name now: leave that one alone.
    if asset is not None and (asset.details or {}).get("container_id") == record.id:
        _mark_asset_gone(obs.session, asset, obs.now, f"{record.name} is no longer identified as a database: "
                                                      f"{'; '.join(obs.ident.reasons)}")


def _register(obs: _Observation) -> Asset:
    record, ident, credential, now = obs.record, obs.ident, obs.credential, obs.now
    details, connection = _details_and_connection(obs)
    asset = Asset(kind=ident.kind or "database", engine=ident.engine, name=record.name, source=SOURCE,
                  external_id=record.name, labels=dict(record.labels), connection=connection, details=details,
                  created_at=now)
    if credential and obs.box is not None and credential.password is not None:
        asset.secret = obs.box.seal({"password": credential.password})
    obs.result.created = True
    ep = details["endpoints"][0] if details["endpoints"] else None
    lifecycle.register(obs.session, asset,
                       f"{ident.engine} container {record.name} discovered"
                       + (f" at {ep['host']}:{ep['port']}" if ep else "") + f" (confidence {ident.confidence})",
                       payload={"container_id": record.id, "image": record.image, "engine": ident.engine,
                                "confidence": ident.confidence, "reasons": ident.reasons},
                       dedupe_key=f"docker:discovered:{record.id}", now=now)
    return asset


def _revive(obs: _Observation) -> Asset:
    """A gone asset whose name is a database container again: same asset, same history."""
    asset, record = obs.asset, obs.record
    assert asset is not None  # nosec B101 # the transition table sends only existing assets here
    old = asset.details or {}
    obs.result.revived = True
    lifecycle.revive(obs.session, asset, f"{record.name} is back (container {record.short_id})",
                     payload={"container_id": record.id, "previous_container_id": old.get("container_id")},
                     dedupe_key=f"docker:revived:{record.id}", now=obs.now)
    return _refresh(obs)


def _refresh(obs: _Observation) -> Asset:
    """A live (or just revived) asset: take the container's current fields, report what changed."""
    asset, record, credential, result = obs.asset, obs.record, obs.credential, obs.result
    assert asset is not None  # nosec B101 # the transition table sends only existing assets here
    old = asset.details or {}
    details, connection = _details_and_connection(obs)
    # A stopping container loses its port bindings and sockets while inspect may still say "running",
    # and with its process gone a host-network one would fall back to EXPOSE, which can name another
    # server on the host: keep probing where it last served, to report it down.
    guessed = record.network_mode == "host" and not record.proc_readable
    if old.get("endpoints") and (not details["endpoints"] or guessed):
        details["endpoints"] = old["endpoints"]
        connection = _connection(details, credential)
    result.changed = [k for k in WATCHED if old.get(k) != details.get(k)]
    if old.get("container_id") and old.get("container_id") != record.id:
        result.changed.insert(0, "container_id")
    if "tls" in old:
        details["tls"] = old["tls"]
    if "ports_probe" in old:
        details["ports_probe"] = old["ports_probe"]
    asset.kind, asset.engine = obs.ident.kind or "database", obs.ident.engine
    asset.labels, asset.details = dict(record.labels), details
    if connection != asset.connection:
        asset.connection = connection
    _reseal(obs, asset)
    if result.changed and not result.revived and old:
        lifecycle.change(obs.session, asset, result.changed, f"{record.name} changed: {', '.join(result.changed)}",
                         before={k: old.get(k) for k in result.changed},
                         after={k: details.get(k) for k in result.changed})
    return asset


def _reseal(obs: _Observation, asset: Asset) -> None:
    credential, box = obs.credential, obs.box
    if credential and box is not None and credential.password is not None:
        sealed_now = box.open(asset.secret).get("password") if asset.secret else None
        if sealed_now != credential.password:
            asset.secret = box.seal({"password": credential.password})
    elif credential is None or credential.password is None:
        asset.secret = None  # withdrawn or refused: keep nothing that could be sent later


def _details_and_connection(obs: _Observation) -> tuple[dict, dict]:
    details = asset_fields(obs.record, obs.ident)
    if obs.credential:
        details["monitoring"] = {"credentials": obs.credential.rule, "handed_to": ["schema", "metrics"]}
    return details, _connection(details, obs.credential)


# (where the asset stands, whether the container is a database now) -> the one transition to run.
_TRANSITIONS = {
    (AssetPresence.ABSENT, False): _ignore,
    (AssetPresence.GONE, False): _ignore,
    (AssetPresence.LIVE, False): _retire,
    (AssetPresence.ABSENT, True): _register,
    (AssetPresence.GONE, True): _revive,
    (AssetPresence.LIVE, True): _refresh,
}


def _mark_asset_gone(session: Session, asset: Asset, now: datetime, summary: str) -> None:
    lifecycle.remove(session, asset, summary, payload={"container_id": (asset.details or {}).get("container_id")},
                     now=now)


def mark_gone(session: Session, container_id: str, *, now: datetime | None = None) -> Asset | None:
    """The container was destroyed (or vanished between reconciles)."""
    now = now or utcnow()
    state = session.scalar(select(ContainerState).where(ContainerState.container_id == container_id))
    if state is None or state.status == "gone":
        return None
    state.status, state.gone_at = "gone", now
    asset = session.get(Asset, state.asset_id) if state.asset_id else None
    # A recreated container may already own the asset under the same name: leave it alone.
    if asset is not None and asset.status != "gone" and (asset.details or {}).get("container_id") == container_id:
        _mark_asset_gone(session, asset, now, f"{state.name} was removed (container {container_id[:12]})")
        return asset
    return None
