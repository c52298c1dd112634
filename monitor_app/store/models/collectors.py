"""Collector health: the running failure streak of each (collector, subject) pair."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import Base, UTCDateTime


class CollectorHealth(Base):
    """One row per collector and what it collects from (`asset:<id>`, or e.g. `docker` for
    discovery, which has no asset). `failing` flips only on a transition, by conditional
    UPDATE, so two workers failing at once announce the failure once."""

    __tablename__ = "collector_health"

    collector: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    failing: Mapped[bool] = mapped_column(Boolean, default=False)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
