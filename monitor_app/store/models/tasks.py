"""The task ledger: every dispatched task is a row before it is a broker message.

Brokers can lose messages (the embedded filesystem broker has no acks; a Redis
without persistence forgets its queues on restart), so the row, not the message,
is the source of truth: a sweep re-sends rows that are queued or running past
their lease. Tasks are idempotent, so a second delivery is harmless.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import Base, JSONType, UTCDateTime, utcnow

TASK_STATES = ("queued", "running", "done", "failed")


class TaskRun(Base):
    __tablename__ = "task_runs"
    __table_args__ = (
        Index("ix_task_runs_status_lease", "status", "lease_until"),
        Index("ix_task_runs_requested", "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str | None] = mapped_column(String(64))  # scan kind when requested as a scan
    kwargs: Mapped[dict] = mapped_column(JSONType, default=dict)
    queue: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    requested_by: Mapped[str] = mapped_column(String(128), default="system")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
