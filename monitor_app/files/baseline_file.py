"""A baseline written to a file, for `dbmon files baseline` / `check` (AIDE's database, in JSON):
the scan spec it was taken with, so a check reads the tree the same way, and every entry's state.

A baseline file is input too: a hand-edited or truncated one gets an error naming what is wrong,
not a traceback. Every field is type-checked here, because a wrong type would otherwise surface
deep inside the scan (a string hash limit compared with a size, a number given as a glob)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Callable

from monitor_app.errors import DbmonError
from monitor_app.files.file_state import FileState
from monitor_app.files.tree_scan import ScanResult, ScanSpec

FORMAT = "dbmon-file-baseline/1"
_SPEC_FIELDS = ("root", "recursive", "include", "exclude", "hash_content", "hash_limit")
_ENTRY_TYPES = ("file", "dir", "symlink", "other")
_INT_FIELDS = ("size", "mode", "uid", "gid", "inode", "dev", "mtime_ns")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a size


def _is_globs(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(g, str) for g in value)


# Per spec field: whether a value is acceptable, and what it must be (for the message).
_SPEC_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "root": (lambda v: isinstance(v, str) and v != "", "a non-empty path"),
    "recursive": (lambda v: isinstance(v, bool), "true or false"),
    "include": (_is_globs, "a list of globs"),
    "exclude": (_is_globs, "a list of globs"),
    "hash_content": (lambda v: isinstance(v, bool), "true or false"),
    "hash_limit": (lambda v: _is_int(v) and v >= 0, "a byte count"),
}


class _Malformed(Exception):
    pass


def dump(spec: ScanSpec, result: ScanResult, taken_at: str) -> str:
    spec_dict = {k: v for k, v in asdict(spec).items() if k in _SPEC_FIELDS}
    return json.dumps({"format": FORMAT, "taken_at": taken_at, "spec": spec_dict,
                       "entries": {p: s.as_dict() for p, s in sorted(result.states.items())},
                       "errors": result.errors}, indent=1, sort_keys=True)


def load(text: str, source: str) -> tuple[ScanSpec, dict[str, FileState]]:
    try:
        data = json.loads(text)
    except RecursionError:  # `[[[[...` nested past the interpreter's stack
        raise DbmonError(f"{source}: not a baseline file (invalid JSON: nested too deeply)", permanent=True) from None
    except ValueError as exc:
        raise DbmonError(f"{source}: not a baseline file (invalid JSON: {exc})", permanent=True) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DbmonError(f"{source}: not a baseline file (format is not {FORMAT!r})", permanent=True)
    spec_data, entries = data.get("spec"), data.get("entries")
    if not isinstance(spec_data, dict) or not isinstance(entries, dict):
        raise DbmonError(f"{source}: spec and entries must be objects", permanent=True)
    try:
        spec = _spec(spec_data)
        states = {path: _entry(path, value) for path, value in entries.items()}
    except _Malformed as exc:
        raise DbmonError(f"{source}: {str(exc)[:300]}", permanent=True) from None
    return spec, states


def _spec(data: dict) -> ScanSpec:
    if "root" not in data:
        raise _Malformed("spec.root is missing")
    values: dict[str, Any] = {}
    for name in _SPEC_FIELDS:
        if name not in data:
            continue
        check, expected = _SPEC_CHECKS[name]
        if not check(data[name]):
            raise _Malformed(f"spec.{name} must be {expected}, not {json.dumps(data[name])[:80]}")
        values[name] = tuple(data[name]) if isinstance(data[name], list) else data[name]
    return ScanSpec(**values)


def _entry(path: str, value: Any) -> FileState:
    where = f"a malformed entry {path[:200]!r}"
    if not isinstance(value, dict):
        raise _Malformed(f"{where}: not an object")
    if value.get("type") not in _ENTRY_TYPES:
        raise _Malformed(f"{where}: type must be one of {', '.join(_ENTRY_TYPES)}")
    for name in _INT_FIELDS:
        if not _is_int(value.get(name)):
            raise _Malformed(f"{where}: {name} must be a whole number")
    for name in ("sha256", "link"):
        if value.get(name) is not None and not isinstance(value[name], str):
            raise _Malformed(f"{where}: {name} must be a string")
    return FileState.from_dict(value)
