"""dbmon's own processes as the store sees them: one heartbeat row per component, and the
small state the self-check shares between workers (when the dead-man's switch last pinged).

A row is keyed by (kind, instance), so a restarted worker with the same node name overwrites
its row instead of adding one; rows of components gone for good are deleted by the self-check
after `DBMON_SELFMON_FORGET_AFTER`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import Base, JSONType, UTCDateTime

COMPONENT_KINDS = ("worker", "beat", "watcher", "watch_source", "api")


class ComponentHeartbeat(Base):
    __tablename__ = "component_heartbeats"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # one of COMPONENT_KINDS
    # Celery node name for workers, `beat@host`, `watcher@host`, `watcher@host/<source>`, `api@host:pid`.
    instance: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list] = mapped_column(JSONType, default=list)  # what a worker consumes
    # The writer's own period: the row is dead once it is older than three of them.
    interval: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)


class SelfmonState(Base):
    """Named timestamps the self-check claims by conditional UPDATE, so two workers running it at
    once act once (e.g. `deadman`: one ping per interval whatever the number of workers)."""

    __tablename__ = "selfmon_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
