"""Files: the paths dbmon watches, the baseline it keeps of each entry under them, the changes it
found, and the backups it has judged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import BigId, Base, JSONType, UTCDateTime, utcnow


class FileWatch(Base):
    """One watched root (a directory or a single file), from the config file or derived from an
    asset. `key` is its identity across syncs; a watch no longer wanted is marked `removed` and
    its baseline dropped, while its changes stay as history."""

    __tablename__ = "file_watches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # config | postgresql | sqlite | docker
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))
    kinds: Mapped[list] = mapped_column(JSONType, default=list)
    spec: Mapped[dict] = mapped_column(JSONType, default=dict)  # recursive, include, exclude, events, backup
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|ok|unavailable|error|removed
    status_detail: Mapped[str | None] = mapped_column(Text)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[dict] = mapped_column(JSONType, default=dict)  # path -> why unreadable (bounded)
    baseline_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    last_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_full_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_change_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sample_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # growth series, at most every 10 s
    # PostgreSQL settings changed in a config file that wait for a restart (from pg_settings).
    pending_restart: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FileEntry(Base):
    """The baseline of one path under a watch. `path_key` (a hash) is the key because a path can
    be longer than an index entry may be; `config` is the parsed, secret-free form of a config
    file, which the next version is diffed against."""

    __tablename__ = "file_entries"

    watch_id: Mapped[int] = mapped_column(ForeignKey("file_watches.id", ondelete="CASCADE"), primary_key=True)
    path_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    state: Mapped[dict] = mapped_column(JSONType)
    config: Mapped[dict | None] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FileChange(Base):
    """One change of one path, with the config diff when the path is a config file."""

    __tablename__ = "file_changes"
    __table_args__ = (Index("ix_file_changes_watch_id", "watch_id", "id"),
                      Index("ix_file_changes_asset_observed", "asset_id", "observed_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("file_watches.id", ondelete="CASCADE"))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))
    path: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    fields: Mapped[list] = mapped_column(JSONType, default=list)
    old: Mapped[dict | None] = mapped_column(JSONType)
    new: Mapped[dict | None] = mapped_column(JSONType)
    dest: Mapped[str | None] = mapped_column(Text)
    diff: Mapped[list | None] = mapped_column(JSONType)
    reason: Mapped[str] = mapped_column(String(32))  # event | rescan | overflow | start | periodic
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FileBackup(Base):
    """The latest judgement of one backup file under a backup watch."""

    __tablename__ = "file_backups"
    __table_args__ = (UniqueConstraint("watch_id", "path_key", name="uq_file_backups_path"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("file_watches.id", ondelete="CASCADE"))
    path_key: Mapped[str] = mapped_column(String(40))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))  # in_progress | completed | corrupt | deleted
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sha256: Mapped[str | None] = mapped_column(String(64))
    format: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
