"""Monitored PostgreSQL servers: what each may be asked for, and the connection slots held on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import Base, UTCDateTime


class MonitoredServer(Base):
    """One row per server (host:port or socket directory:port) dbmon has connected to.

    `cap` is the most the server can spare dbmon: a share of what it reported (`max_connections`
    less its reserved slots); the budget is the smaller of it and the setting. `backoff_until` is set when the server
    refused a connection for lack of slots, so no process retries into it meanwhile."""

    __tablename__ = "monitored_servers"

    server: Mapped[str] = mapped_column(String(255), primary_key=True)
    cap: Mapped[int | None] = mapped_column(Integer)
    max_connections: Mapped[int | None] = mapped_column(Integer)
    reserved_connections: Mapped[int | None] = mapped_column(Integer)
    limits_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    backoff_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refusals: Mapped[int] = mapped_column(Integer, default=0)
    last_refusal: Mapped[str | None] = mapped_column(String(500))


class ServerConnectionSlot(Base):
    """A lease on one of a server's numbered slots; the primary key is what caps the count.

    The holder renews `expires_at` while it keeps the connection; a holder that died stops
    renewing and its slot may be taken over once expired."""

    __tablename__ = "server_connection_slots"

    server: Mapped[str] = mapped_column(String(255), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
