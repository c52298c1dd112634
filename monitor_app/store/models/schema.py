"""Schema history: snapshots versioned per asset, change sets between versions, their changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import Base, BigId, JSONType, UTCDateTime, utcnow


class SchemaSnapshot(Base):
    """A full snapshot document; a new version is stored only when its content differs."""

    __tablename__ = "schema_snapshots"
    __table_args__ = (UniqueConstraint("asset_id", "version", name="uq_schema_snapshots_asset_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    engine: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    object_count: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict] = mapped_column(JSONType)


class SchemaChangeSet(Base):
    """What changed from one version to the next, with what the notification said about it."""

    __tablename__ = "schema_change_sets"
    __table_args__ = (
        UniqueConstraint("asset_id", "to_version", name="uq_schema_change_sets_asset_to_version"),
        Index("ix_schema_change_sets_asset_detected", "asset_id", "detected_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    from_version: Mapped[int] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    max_risk: Mapped[str] = mapped_column(String(16))
    change_count: Mapped[int] = mapped_column(Integer)
    # source (trigger | scheduled | manual | file), command tags, users, application names, times.
    context: Mapped[dict] = mapped_column(JSONType, default=dict)


class SchemaChange(Base):
    __tablename__ = "schema_changes"
    __table_args__ = (
        Index("ix_schema_changes_asset_detected", "asset_id", "detected_at"),
        Index("ix_schema_changes_asset_risk", "asset_id", "risk"),
        Index("ix_schema_changes_object", "object"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    change_set_id: Mapped[int] = mapped_column(ForeignKey("schema_change_sets.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(16))
    object_type: Mapped[str] = mapped_column(String(32))
    object: Mapped[str] = mapped_column(String(1024))
    risk: Mapped[str] = mapped_column(String(16))
    renamed_from: Mapped[str | None] = mapped_column(String(1024))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)


class SchemaWatchState(Base):
    """Per-asset bookkeeping of the scheduled path: the last pre-check marker and trigger state."""

    __tablename__ = "schema_watch_state"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    marker: Mapped[str | None] = mapped_column(String(128))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trigger_installed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Compatibility mismatches already reported, so each is an event once, when it appears.
    open_mismatches: Mapped[list] = mapped_column(JSONType, default=list)
