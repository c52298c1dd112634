"""Docker event cursor and the last known state of every container on the engine."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import Base, JSONType, UTCDateTime, utcnow


class ContainerEventCursor(Base):
    """Where the event follower resumes: the `timeNano` of the last event handed on, and the
    keys of the events at exactly that instant (the engine's `since` is inclusive)."""

    __tablename__ = "container_event_cursors"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)  # docker:<engine id>
    time_nano: Mapped[int] = mapped_column(BigInteger, default=0)
    keys: Mapped[list] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContainerState(Base):
    """Every container seen, database or not, with the identification verdict and its reasons:
    the discovery inventory, and the memory lifecycle classification needs between events."""

    __tablename__ = "container_states"
    __table_args__ = (Index("ix_container_states_asset", "asset_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    container_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    image: Mapped[str] = mapped_column(String(512), default="")
    engine: Mapped[str | None] = mapped_column(String(32))
    is_database: Mapped[bool] = mapped_column(Boolean, default=False)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    reasons: Mapped[list] = mapped_column(JSONType, default=list)
    record: Mapped[dict] = mapped_column(JSONType, default=dict)  # normalised, no env values
    status: Mapped[str] = mapped_column(String(16), default="")  # docker status, or "gone"
    restart_count: Mapped[int] = mapped_column(Integer, default=0)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))
    last_event_nano: Mapped[int] = mapped_column(BigInteger, default=0)
    # Last API kill/stop/restart: a die shortly after one is planned, not a crash.
    stop_requested_nano: Mapped[int | None] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
