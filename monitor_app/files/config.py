"""The file concern's part of the config file: `watch:` entries, and the `files:` section that
says what dbmon watches on its own and how often it rescans."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monitor_app.alerting.rule_fields import Duration
from monitor_app.config.section import ConfigSection
from monitor_app.files.backup_check import BackupPolicy

Kind = Literal["data", "wal", "config", "log", "backup"]
EventName = Literal["created", "modified", "deleted", "moved", "permissions"]
EVENT_NAMES = ("created", "modified", "deleted", "moved", "permissions")

# What is worth an event per kind. A data directory or WAL changes with every write, creates and
# deletes files as relations and segments come and go: only its permissions are news, its growth
# is a metric. A log rotates (created, deleted, moved) and grows. A new backup is reported once,
# as backup.completed when it stopped changing, not as every write on the way.
DEFAULT_EVENTS: dict[str, tuple[str, ...]] = {
    "data": ("permissions",),
    "wal": ("permissions",),
    "log": ("created", "deleted", "moved", "permissions"),
    "config": EVENT_NAMES,
    "backup": ("deleted", "moved", "permissions"),  # arrivals are backup.completed, once settled
}
HASHED_KINDS = ("config", "backup")
GROWTH_KINDS = ("data", "wal", "log")


class WatchConfig(ConfigSection):
    path: Path
    asset: str | None = None
    kinds: list[Kind] = Field(default_factory=lambda: list[Kind](["data"]), min_length=1)
    recursive: bool = True
    include: list[str] = Field(default_factory=list, description="Globs on the path under the root or the name.")
    exclude: list[str] = Field(default_factory=list)
    # Unset: the union of the kinds' defaults (DEFAULT_EVENTS).
    events: list[EventName] | None = None
    backup: BackupPolicy | None = None

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        if not path.is_absolute():
            raise ValueError("must be an absolute path")
        return path

    @model_validator(mode="after")
    def _backup_policy(self) -> "WatchConfig":
        if "backup" in self.kinds and self.backup is None:
            self.backup = BackupPolicy.model_validate({})
        if self.backup is not None and "backup" not in self.kinds:
            raise ValueError("backup: settings given but 'backup' is not one of the kinds")
        return self

    def spec(self) -> dict:
        """What a stored watch keeps: the parts that decide how it is scanned and reported."""
        events = self.events if self.events is not None else sorted(
            {e for kind in self.kinds for e in DEFAULT_EVENTS[kind]}, key=EVENT_NAMES.index)
        return {"recursive": self.recursive, "include": list(self.include), "exclude": list(self.exclude),
                "events": list(events), "backup": self.backup.model_dump(mode="json") if self.backup else None}


class FilesConfig(ConfigSection):
    # Watch what dbmon can see of its assets (PostgreSQL's data directory and config files when it
    # runs on this host, SQLite files, Docker-discovered databases' mounts) without a watch entry.
    auto_watch: bool = True
    # The safety net under the real-time events, as AIDE's daily run is, but cheap enough for minutes.
    rescan_interval: Duration = 900.0
    # Files larger than this are never hashed (a 10 GB backup is compared by size and mtime).
    hash_limit_bytes: int = Field(256 << 20, ge=0)
    # A watch with more entries stops reading there and says so (status `error`, "truncated").
    max_entries: int = Field(200_000, ge=1, le=5_000_000)
