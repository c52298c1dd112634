"""Posture: the findings currently open per asset, and each asset's last check."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import Base, JSONType, UTCDateTime, utcnow


class PostureFinding(Base):
    """One open finding. Its primary key is what makes a concurrent second check unable to
    open (and announce) the same finding twice; a resolved finding's row is deleted, its
    history is the event log."""

    __tablename__ = "posture_findings"
    __table_args__ = (Index("ix_posture_findings_severity", "severity"),)

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    finding: Mapped[str] = mapped_column(String(255), primary_key=True)
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    remediation: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PostureState(Base):
    __tablename__ = "posture_state"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    # attempted_at drives scheduling, so an unreachable server is not retried on every sweep.
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    server_version: Mapped[str | None] = mapped_column(String(255))
    release_list_as_of: Mapped[str | None] = mapped_column(String(10))
    # check -> privilege it needs, for what could not be read with the monitoring role.
    not_checked: Mapped[dict] = mapped_column(JSONType, default=dict)
