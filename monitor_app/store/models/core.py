"""Assets, the append-only event log, the audit trail and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import BigId, Base, JSONType, UTCDateTime, utcnow

ROLES = ("viewer", "operator", "admin")


class Asset(Base):
    """Anything dbmon watches. `source` + `external_id` identify it where it came from
    (a config entry name, a container id) so re-discovery updates instead of duplicating."""

    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_assets_source_external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # database | container | host
    engine: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))  # config | docker | ...
    external_id: Mapped[str] = mapped_column(String(255))
    labels: Mapped[dict] = mapped_column(JSONType, default=dict)
    # Host, port, database, user, sslmode: never a password (see `secret`).
    connection: Mapped[dict] = mapped_column(JSONType, default=dict)
    # Fernet-encrypted credential or reference; never leaves the store through the API.
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # unknown | up | down | stopped | gone
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Pushed forward after a failure so one broken target cannot monopolise workers.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(Base):
    """Append-only. `dedupe_key` makes a retried task's insert a no-op instead of a duplicate."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_asset_detected", "asset_id", "detected_at"),
        Index("ix_events_type_detected", "type", "detected_at"),
        Index("ix_events_detected", "detected_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16), default="info")
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    outcome: Mapped[str] = mapped_column(String(16))  # ok | denied | invalid | error
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))


class ApiKey(Base):
    """Only a SHA-256 of the key is kept: keys are 256-bit random, so no slow hash is needed."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
