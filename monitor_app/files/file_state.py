"""One path's state as the baseline keeps it, read without following symlinks.

Hashing is what makes AIDE slow, so only kinds whose content matters (config, backup) are
hashed, only files up to a size limit, and only when the cheap stat says something moved.
A file replaced or truncated while it is being hashed is reported as `changing`, not given
a hash of half of two versions.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import asdict, dataclass
from typing import Any

HASH_CHUNK = 1 << 20
# A 10 GB backup is never hashed by default: reading it would be the outage.
DEFAULT_HASH_LIMIT = 256 << 20


@dataclass(frozen=True)
class FileState:
    type: str  # file | dir | symlink | other
    size: int
    mode: int  # permission bits only (S_IMODE)
    uid: int
    gid: int
    inode: int
    dev: int
    mtime_ns: int
    sha256: str | None = None
    link: str | None = None  # a symlink's target, never followed

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "FileState":
        values: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**values)

    def same_content_stat(self, other: "FileState") -> bool:
        """Whether a hash taken of `other` still describes this file (nothing moved since)."""
        return (self.type, self.size, self.mtime_ns, self.inode, self.dev) == (
            other.type, other.size, other.mtime_ns, other.inode, other.dev)


class Changing(Exception):
    """The file changed while it was being read."""


def _type(st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return "other"


def from_stat(st: os.stat_result, *, link: str | None = None, sha256: str | None = None) -> FileState:
    return FileState(type=_type(st), size=st.st_size, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                     gid=st.st_gid, inode=st.st_ino, dev=st.st_dev, mtime_ns=st.st_mtime_ns,
                     sha256=sha256, link=link)


def sha256_of(path: str | bytes, expected: FileState) -> str:
    """SHA-256 of a regular file that must still be `expected` when the read ends.

    Opened with O_NOFOLLOW so a path swapped for a symlink between the stat and the open is not
    followed, and O_NONBLOCK so a FIFO put in its place cannot hang the scan."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise Changing(str(exc)) from None
    try:
        before = from_stat(os.fstat(fd))
        if before.type != "file" or not before.same_content_stat(expected):
            raise Changing("replaced before it was read")
        digest = hashlib.sha256()
        remaining = before.size
        while True:
            chunk = os.read(fd, HASH_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
            if remaining < 0:
                raise Changing("grew while it was read")
        after = from_stat(os.fstat(fd))
        if remaining != 0 or not after.same_content_stat(before):
            raise Changing("changed while it was read")
        return digest.hexdigest()
    finally:
        os.close(fd)


def read_state(path: str | bytes, *, hash_content: bool = False, hash_limit: int = DEFAULT_HASH_LIMIT,
               previous: FileState | None = None) -> FileState:
    """The state of `path` (lstat). Raises OSError when it cannot be read, Changing when it moved
    under the hash. A hash is reused from `previous` when size, mtime and inode are unchanged."""
    st = os.lstat(path)
    link = None
    if stat.S_ISLNK(st.st_mode):
        link = os.fsdecode(os.readlink(os.fsdecode(path)))
    state = from_stat(st, link=link)
    if not hash_content or state.type != "file" or state.size > hash_limit:
        return state
    if previous is not None and previous.sha256 and previous.same_content_stat(state):
        digest = previous.sha256
    else:
        digest = sha256_of(path, state)
    return FileState(**{**asdict(state), "sha256": digest})
