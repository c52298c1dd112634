"""The exact (name, version) pins of a hashed lock file such as requirements.lock."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


class LockError(ValueError):
    pass


def read_lock(path: Path) -> dict[str, str]:
    """Canonical package name -> pinned version. Every entry must be `name==version`."""
    pins: dict[str, str] = {}
    for number, line in _logical_lines(Path(path).read_text()):
        spec = line.split(" --hash", 1)[0].split(";", 1)[0].strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise LockError(f"{path}:{number}: not a requirement: {exc}") from None
        pinned = [s.version for s in req.specifier if s.operator == "=="]
        if len(pinned) != 1 or len(req.specifier) != 1:
            raise LockError(f"{path}:{number}: {req.name} is not pinned with == (got {req.specifier or 'nothing'})")
        pins[canonicalize_name(req.name)] = pinned[0]
    return pins


def _logical_lines(text: str):
    """Requirement lines with backslash continuations joined; comments and options dropped."""
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        stripped = buffer.strip()
        buffer = ""
        if stripped and not stripped.startswith("-"):
            yield start, stripped
