"""Per-address counters that keep anonymous requests from flooding the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import BigId, Base, UTCDateTime


class AnonymousAuditWindow(Base):
    """One row per source address and minute: how many anonymous requests it made, and the
    summary audit row that counts those beyond the per-minute limit."""

    __tablename__ = "audit_anonymous_windows"

    remote_addr: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    seen: Mapped[int] = mapped_column(Integer, default=0)
    summary_id: Mapped[int | None] = mapped_column(BigId)
