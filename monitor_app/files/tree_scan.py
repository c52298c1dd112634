"""Reading a watched tree into {path: FileState}, the way a rescan and `dbmon files check` see it.

Symlinks are recorded, never followed (no loops, no escaping the tree). Paths are kept as text;
a name that is not valid UTF-8 is stored with its bad bytes escaped (`\\xff`), which is how it is
shown and keyed. A path that cannot be read is reported per path, never raised; a tree over
`max_entries` stops there and says so, so a runaway directory cannot exhaust the worker.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Iterable

from monitor_app.files.file_state import DEFAULT_HASH_LIMIT, Changing, FileState, read_state

DEFAULT_MAX_ENTRIES = 1_000_000


def display_path(path: str) -> str:
    """A path as text that PostgreSQL and JSON accept, whatever bytes the name holds."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class ScanSpec:
    """What to read under a root: a single file or a directory, and which entries count."""

    root: str
    recursive: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hash_content: bool = False
    hash_limit: int = DEFAULT_HASH_LIMIT
    max_entries: int = DEFAULT_MAX_ENTRIES

    @classmethod
    def of_watch(cls, root: str, spec: dict, **options) -> "ScanSpec":
        """The scan a stored watch's spec asks for (its `recursive`, `include` and `exclude`)."""
        return cls(root=root, recursive=bool(spec.get("recursive", True)), include=tuple(spec.get("include") or ()),
                   exclude=tuple(spec.get("exclude") or ()), **options)

    def matcher(self) -> "_Matcher":
        return _Matcher(self.include, self.exclude)


class _Matcher:
    """Globs match the path relative to the root (`pg_wal/*`) or the bare name (`*.conf`).

    The one definition of what a watch leaves out: the scan applies it while walking, and the
    watcher to each file event (`reached`), so an excluded path neither is read nor causes a read."""

    def __init__(self, include: Iterable[str], exclude: Iterable[str]):
        exclude = list(exclude)
        self.include = _compile(include)
        self.exclude = _compile(exclude)
        # `DIR/*` leaves out everything under DIR at any depth (fnmatch's `*` matches `/` too), so
        # such a directory is recorded but never listed: 300,000 relation files cost no readdir.
        self.emptied = _compile(g[:-2] for g in exclude if len(g) > 2 and g.endswith("/*"))

    def wanted(self, rel: str, is_dir: bool) -> bool:
        """Whether to look at an entry: every directory not excluded is, whatever `include` says."""
        name = rel.rsplit("/", 1)[-1]
        if self.exclude and (self.exclude.match(rel) or self.exclude.match(name)):
            return False
        if is_dir or not self.include:
            return True
        return bool(self.include.match(rel) or self.include.match(name))

    def recorded(self, rel: str) -> bool:
        """Whether a directory that is walked also goes into the baseline: not when globs pick files."""
        name = rel.rsplit("/", 1)[-1]
        return not self.include or bool(self.include.match(rel) or self.include.match(name))

    def walked(self, rel: str) -> bool:
        """Whether a directory that is looked at has its entries looked at too: not when an exclude
        glob `DIR/*` leaves every one of them out."""
        return not (self.emptied and self.emptied.match(rel))

    def reached(self, rel: str, is_dir: bool) -> bool:
        """Whether a scan from the root looks at `rel`: every directory above it looked at and
        walked, and `rel` itself wanted. A path under an excluded directory is not reached."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            if not self.wanted(above, True) or not self.walked(above):
                return False
        return self.wanted(rel, is_dir)


def _compile(globs: Iterable[str]) -> re.Pattern | None:
    parts = [fnmatch.translate(g) for g in globs]
    return re.compile("|".join(parts)) if parts else None


@dataclass
class ScanResult:
    states: dict[str, FileState] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # path -> why it could not be read
    changing: list[str] = field(default_factory=list)  # moved while hashed: read again later
    truncated: bool = False
    root_error: str | None = None  # the root itself is missing or unreadable

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self.states.values() if s.type == "file")


def scan(spec: ScanSpec, previous: dict[str, FileState] | None = None) -> ScanResult:
    """Every entry under `spec.root` (the root included), hashing as the spec says and reusing
    hashes from `previous` where the stat shows nothing moved."""
    result = ScanResult()
    previous = previous or {}
    try:
        root_state = read_state(spec.root, hash_content=spec.hash_content, hash_limit=spec.hash_limit,
                                previous=previous.get(display_path(spec.root)))
    except Changing:
        result.changing.append(display_path(spec.root))
        return result
    except OSError as exc:
        result.root_error = exc.strerror or str(exc)
        return result
    result.states[display_path(spec.root)] = root_state
    if root_state.type != "dir":
        return result
    matcher = spec.matcher()
    stack = [spec.root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                batch = list(entries)
        except OSError as exc:
            result.errors[display_path(directory)] = exc.strerror or str(exc)
            continue
        for entry in batch:
            path = entry.path
            rel = path[len(spec.root):].lstrip("/")
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if not matcher.wanted(rel, is_dir):
                continue
            if len(result.states) >= spec.max_entries:
                result.truncated = True
                return result
            if is_dir and not matcher.recorded(rel):
                if spec.recursive and matcher.walked(rel):
                    stack.append(path)
                continue
            if _record(path, spec, previous, result) and is_dir and spec.recursive and matcher.walked(rel):
                stack.append(path)
    return result


def _record(path: str, spec: ScanSpec, previous: dict[str, FileState], result: ScanResult) -> bool:
    key = display_path(path)
    try:
        result.states[key] = read_state(path, hash_content=spec.hash_content, hash_limit=spec.hash_limit,
                                        previous=previous.get(key))
        return True
    except Changing:
        result.changing.append(key)
    except FileNotFoundError:
        pass  # gone between the listing and the stat: the next event or scan sees it as deleted
    except OSError as exc:
        result.errors[key] = exc.strerror or str(exc)
    return False


def read_paths(spec: ScanSpec, paths: Iterable[str], previous: dict[str, FileState]) -> ScanResult:
    """Only `paths` (from file events), plus the direct entries of any that is a directory:
    a directory event stands for a create or delete inside it."""
    result = ScanResult()
    matcher = spec.matcher()
    root = spec.root.rstrip("/") or "/"
    for path in dict.fromkeys(paths):
        if path != root and not path.startswith(root + "/"):
            continue
        rel = path[len(root):].lstrip("/")
        if path != root and (not spec.recursive and "/" in rel):
            continue
        is_dir = _is_dir(path)
        if rel and not matcher.reached(rel, is_dir):
            continue
        if rel and is_dir and not matcher.recorded(rel):
            # Walked but, as in a full scan, not itself in the baseline (globs pick files).
            _children(path, spec, matcher, previous, result)
        elif _record(path, spec, previous, result) and result.states[display_path(path)].type == "dir":
            _children(path, spec, matcher, previous, result)
    return result


def _is_dir(path: str) -> bool:
    """A directory, not a symlink to one: as a full scan's listing sees it."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _children(directory: str, spec: ScanSpec, matcher: _Matcher, previous, result: ScanResult) -> None:
    if directory != spec.root and not (spec.recursive and matcher.walked(directory[len(spec.root):].lstrip("/"))):
        return
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = entry.path[len(spec.root):].lstrip("/")
                is_dir = entry.is_dir(follow_symlinks=False)
                if matcher.wanted(rel, is_dir) and (not is_dir or matcher.recorded(rel)):
                    _record(entry.path, spec, previous, result)
    except OSError as exc:
        result.errors[display_path(directory)] = exc.strerror or str(exc)
