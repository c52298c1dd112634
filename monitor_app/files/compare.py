"""Baseline against what is on disk now: the changes, one per path, as AIDE would list them.

A delete and a create of the same inode on the same device, same size and mtime, is a move
(a rename keeps all three). Content is compared by hash where both sides have one, so a
`touch` of a config file is not a change; without hashes size and mtime decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from monitor_app.files.file_state import FileState

CHANGE_TYPES = ("created", "modified", "deleted", "moved", "permissions_changed")


@dataclass
class Change:
    type: str
    path: str
    old: FileState | None = None
    new: FileState | None = None
    dest: str | None = None  # where a moved path went
    fields: list[str] = field(default_factory=list)  # what differs: size, mtime, sha256, mode, uid, gid, type

    def as_dict(self) -> dict:
        out = {"type": self.type, "path": self.path, "fields": self.fields,
               "old": self.old.as_dict() if self.old else None, "new": self.new.as_dict() if self.new else None}
        if self.dest:
            out["dest"] = self.dest
        return out


def content_fields(old: FileState, new: FileState) -> list[str]:
    if old.type != new.type:
        return ["type"]
    if old.type == "symlink":
        return ["link"] if old.link != new.link else []
    if old.type == "dir":
        return []  # a directory's size and mtime move with every entry; its entries report themselves
    if old.sha256 and new.sha256:
        return ["sha256"] if old.sha256 != new.sha256 else []
    out = []
    if old.size != new.size:
        out.append("size")
    if old.mtime_ns != new.mtime_ns or old.inode != new.inode:
        out.append("mtime")
    return out


def permission_fields(old: FileState, new: FileState) -> list[str]:
    return [name for name in ("mode", "uid", "gid") if getattr(old, name) != getattr(new, name)]


def compare(old: dict[str, FileState], new: dict[str, FileState], scope: Iterable[str] | None = None) -> list[Change]:
    """Changes from `old` to `new`. With `scope`, only those paths are judged (a partial read
    after file events): a path in scope that `new` lacks is deleted, others are left alone."""
    keys = set(old) | set(new) if scope is None else set(scope)
    created = {p: new[p] for p in keys if p in new and p not in old}
    deleted = {p: old[p] for p in keys if p in old and p not in new}
    changes = _moves(deleted, created)
    for path in sorted(keys):
        before, after = old.get(path), new.get(path)
        if before is None and after is not None and path in created:
            changes.append(Change("created", path, new=after))
        elif after is None and before is not None and path in deleted:
            changes.append(Change("deleted", path, old=before))
        elif before is not None and after is not None:
            perms = permission_fields(before, after)
            content = content_fields(before, after)
            if content:
                changes.append(Change("modified", path, before, after, fields=content))
            if perms:
                changes.append(Change("permissions_changed", path, before, after, fields=perms))
    return sorted(changes, key=lambda c: (c.path, CHANGE_TYPES.index(c.type)))


def _moves(deleted: dict[str, FileState], created: dict[str, FileState]) -> list[Change]:
    by_identity = {(s.dev, s.inode, s.type, s.size, s.mtime_ns): p for p, s in created.items()}
    moves = []
    for path, state in sorted(deleted.items()):
        dest = by_identity.pop((state.dev, state.inode, state.type, state.size, state.mtime_ns), None)
        if dest is None:
            continue
        moves.append(Change("moved", path, state, created.pop(dest), dest=dest))
    for move in moves:
        deleted.pop(move.path)
    return moves


def event_scope(paths: Iterable[str], old: dict[str, FileState], new: dict[str, FileState]) -> set[str]:
    """The paths a partial read answers for: those asked about, what was read, and for a directory
    that was asked about, the entries the baseline had directly in it (they may be gone)."""
    asked = set(paths)
    scope = asked | set(new)
    directories = {p for p in asked if (old.get(p) and old[p].type == "dir") or (new.get(p) and new[p].type == "dir")}
    if directories:
        scope |= {p for p in old if p.rsplit("/", 1)[0] in directories}
    return scope
