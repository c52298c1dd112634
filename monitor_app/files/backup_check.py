"""Judging backups from what a scan saw: when a file is a finished backup, whether it is damaged
or much smaller than the one before it, and when a backup is overdue.

Completion is the file having stopped changing. Backup tools either write in place (`pg_dump -f`,
`mysqldump > file`) or write a temporary name and rename it into place; neither says when it is
done, so a file is complete once its size and mtime have not moved for `settle`. A rename into
place is in fact complete at once, and its temporary name (`*.tmp`, `*.partial`, a hidden name)
is never counted as a backup; but from outside the new name looks exactly like an in-place write
that has just begun, so `assess` waits `settle` for it too: the cost is a delay, never a
half-written file judged.

Every finished file yields `backup.completed`, whatever the verdict, so the history of backups has
no holes; `backup.corrupt` and `backup.shrunk` come beside it as extra events.

Pure: nothing here reads the disk or the clock. The caller passes the file state, the sidecar
text, the format check and `now`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from pydantic import Field, field_validator

from monitor_app.alerting.rule_fields import Duration
from monitor_app.config.section import ConfigSection
from monitor_app.files.backup_format import FormatCheck
from monitor_app.files.file_state import FileState

SIDECAR_SUFFIX = ".sha256"
TEMP_SUFFIXES = (".tmp", ".partial", ".part")
MAX_SIDECAR_CHARS = 64 << 10
MAX_SIDECAR_LINES = 10_000
# GNU sha256sum: "HEX  name" (text), "HEX *name" (binary), a leading "\" when the name is escaped.
_SUM_LINE = re.compile(r"(?P<escaped>\\)?(?P<hex>[0-9a-fA-F]{64})(?: [ *]?(?P<name>.*))?")
_BSD_LINE = re.compile(r"(?P<escaped>\\)?SHA256 \((?P<name>.*)\) ?= ?(?P<hex>[0-9a-fA-F]{64})")  # --tag
# A checksum the user asked for that could not be compared is worth a look, not silence.
_UNVERIFIED = {"sidecar_missing": "checksum sidecar missing", "sidecar_unreadable": "checksum sidecar unreadable",
               "not_hashed": "file not hashed, checksum not compared"}


class BackupPolicy(ConfigSection):
    max_age: Duration | None = Field(None, description="Report backup.missing when none completed within this.")
    settle: Duration = Field(60.0, description="A file unchanged this long is a finished backup.")
    shrink_ratio: float = Field(0.5, gt=0, le=1, description="Smaller than this times the previous one: shrunk.")
    checksum: Literal["none", "sidecar"] = Field("none", description="sidecar: FILE.sha256 in sha256sum format.")
    format_check: bool = True
    pattern: str | None = Field(None, min_length=1, max_length=256, description="Glob on the file name.")

    @field_validator("max_age")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be longer than 0s")
        return value


@dataclass
class BackupRecord:
    path: str
    size: int
    mtime_ns: int
    completed_at: datetime | None  # the file's mtime: when its writer finished
    sha256: str | None
    state: str  # in_progress | completed | corrupt
    format: str | None
    detail: str


def is_backup_name(name: str, policy: BackupPolicy) -> bool:
    """Whether a file name can be a backup: never a checksum sidecar or a temporary name (a hidden
    name covers rsync's `.name.XXXXXX` and `.~lock` files), then the policy's glob if it has one."""
    lowered = name.lower()
    if not name or name.startswith(".") or lowered.endswith((*TEMP_SUFFIXES, SIDECAR_SUFFIX)):
        return False
    return policy.pattern is None or fnmatch.fnmatchcase(name, policy.pattern)


def assess(current: FileState, seen_since: datetime, previous_completed: BackupRecord | None,
           policy: BackupPolicy, now: datetime) -> str:
    """`ready` once the file has kept this size and mtime for `settle`, else `in_progress`.

    `seen_since` is when the scan first saw the file with exactly this size and mtime (the caller
    resets it whenever either moves). Only dbmon's own clock is used: a file's mtime comes from
    whichever host wrote it, and a skewed one must not make a file that is still growing look
    finished. A file matching `previous_completed` to the nanosecond (the completed backup seen
    again, or a timestamp-preserving copy of it) was already finished and is ready at once."""
    if previous_completed is not None and (previous_completed.size, previous_completed.mtime_ns) == (
            current.size, current.mtime_ns):
        return "ready"
    quiet = (_aware(now) - _aware(seen_since)).total_seconds()
    return "ready" if quiet >= policy.settle else "in_progress"


def judge_completed(path: str, state: FileState, policy: BackupPolicy, previous_completed: BackupRecord | None, *,
                    sidecar_text: str | None, format_check: FormatCheck | None,
                    sha256: str | None) -> tuple[BackupRecord, list[dict]]:
    """The record of a finished backup and its events: always `backup.completed` (info; warning when
    a sidecar checksum was asked for but could not be compared), plus `backup.corrupt` (critical)
    when the format check failed, the sidecar checksum differs or the file is empty, plus
    `backup.shrunk` (warning) when it is under `shrink_ratio` times the previous backup's size.

    `previous_completed` is the backup before this one, whatever its verdict (a damaged one still
    had its size). The record's `completed_at` is the file's mtime, when its writer finished. A
    directory (a `pg_dump -Fd` dump) has no meaningful size or single checksum, so only its
    format is judged."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    is_file = state.type == "file"
    checksum, expected = _checksum(policy, is_file, sidecar_text, name, sha256)
    reasons = []
    if is_file and state.size == 0:
        reasons.append("empty file")
    if format_check is not None and format_check.ok is False:
        reasons.append(f"{format_check.format}: {format_check.detail}")
    if checksum == "mismatch":
        reasons.append(f"sha256 {sha256} differs from the sidecar's {expected}")
    fmt = format_check.format if format_check is not None else None
    unverified = _UNVERIFIED.get(checksum)
    notes = [format_check.detail if format_check is not None else "", unverified or ""]
    record = BackupRecord(path=path, size=state.size, mtime_ns=state.mtime_ns, completed_at=_mtime(state),
                          sha256=sha256, state="corrupt" if reasons else "completed", format=fmt,
                          detail="; ".join(reasons or [n for n in notes if n])[:1000])
    base = {"path": path, "size": state.size, "format": fmt, "sha256": sha256}
    what = _size(state.size) if is_file else "directory"
    summary = f"backup {name} completed: {what}" + (f", {fmt}" if fmt else "") + (f"; {unverified}" if unverified else "")
    events = [_event("backup.completed", "warning" if unverified else "info", summary,
                     {**base, "state": record.state, "checksum": checksum, "detail": record.detail,
                      "format_ok": format_check.ok if format_check is not None else None})]
    if reasons:
        events.append(_event("backup.corrupt", "critical", f"backup {name} is corrupt: {'; '.join(reasons)}"[:500],
                             {**base, "reasons": reasons, "sidecar_sha256": expected}))
    previous = previous_completed
    if is_file and previous is not None and previous.size > 0 and state.size < policy.shrink_ratio * previous.size:
        ratio = state.size / previous.size
        events.append(_event(
            "backup.shrunk", "warning",
            f"backup {name} is {ratio:.0%} of the previous one ({_size(state.size)} after {_size(previous.size)})",
            {**base, "previous_path": previous.path, "previous_size": previous.size, "ratio": round(ratio, 4),
             "shrink_ratio": policy.shrink_ratio}))
    return record, events


def missing(latest_completed_at: datetime | None, watching_since: datetime, policy: BackupPolicy,
            now: datetime) -> dict | None:
    """`backup.missing` (critical) when `max_age` is set and no backup completed within it, counted
    from the start of watching when none ever has. Repeats are the caller's to suppress."""
    if policy.max_age is None:
        return None
    since = _aware(latest_completed_at if latest_completed_at is not None else watching_since)
    age = (_aware(now) - since).total_seconds()
    if age <= policy.max_age:
        return None
    if latest_completed_at is None:
        summary = f"no backup has completed in the {_duration(age)} since watching began"
    else:
        summary = f"the last backup completed {_duration(age)} ago"
    return _event("backup.missing", "critical", f"{summary} (max_age {_duration(policy.max_age)})",
                  {"age": round(age, 3), "max_age": policy.max_age, "watching_since": _aware(watching_since).isoformat(),
                   "latest_completed_at": since.isoformat() if latest_completed_at is not None else None})


def parse_sidecar(text: str, file_name: str) -> str | None:
    """The lowercase SHA-256 a sha256sum file gives for `file_name`, or None.

    Names are compared by their last component (`./x.dump` and `/backups/x.dump` name `x.dump`).
    A sidecar holding exactly one checksum, with any name or none (`sha256sum < f > f.sha256`),
    is taken as this file's: it is tied to the file by its own name, and tools often hash the
    temporary name before renaming the backup into place."""
    entries: list[tuple[str, str | None]] = []
    for line in text[:MAX_SIDECAR_CHARS].splitlines()[:MAX_SIDECAR_LINES]:
        found = _SUM_LINE.fullmatch(line.strip(" \t")) or _BSD_LINE.fullmatch(line.strip(" \t"))
        if found is None:
            continue
        entry_name = found["name"]
        if entry_name is not None and found["escaped"]:
            entry_name = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), entry_name)
        entries.append((found["hex"].lower(), entry_name))
    for digest, entry_name in entries:
        if entry_name is not None and entry_name.rsplit("/", 1)[-1] == file_name:
            return digest
    return entries[0][0] if len(entries) == 1 else None


def _checksum(policy: BackupPolicy, is_file: bool, sidecar_text: str | None, name: str,
              sha256: str | None) -> tuple[str, str | None]:
    """(verdict, the sidecar's digest): none, sidecar_missing, sidecar_unreadable, not_hashed, match, mismatch."""
    if policy.checksum == "none" or not is_file:
        return "none", None
    if sidecar_text is None:
        return "sidecar_missing", None
    expected = parse_sidecar(sidecar_text, name)
    if expected is None:
        return "sidecar_unreadable", None
    if sha256 is None:
        return "not_hashed", expected
    return ("match" if sha256.lower() == expected else "mismatch"), expected


def _event(type_: str, severity: str, summary: str, payload: dict) -> dict:
    return {"type": type_, "severity": severity, "summary": summary, "payload": payload}


def _aware(moment: datetime) -> datetime:
    """Stores hand back naive UTC datetimes; comparing one with an aware `now` would raise."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _mtime(state: FileState) -> datetime | None:
    try:
        return datetime.fromtimestamp(state.mtime_ns / 1e9, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):  # an mtime no datetime can hold
        return None


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _duration(seconds: float) -> str:
    """The two largest units: `1d 2h`, `26m 5s`, `45s`."""
    remaining = int(seconds)
    parts: list[str] = []
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= length or (unit == "s" and not parts):
            amount, remaining = divmod(remaining, length)
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2])
