"""Does an OSV record affect one version of a PyPI package? (ECOSYSTEM ranges and `versions` lists.)

Follows the OSV schema's evaluation: within a range, events are ordered by version; a version is
affected from an `introduced` event until a `fixed` (exclusive) or `last_affected` (inclusive) one.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ECOSYSTEM = "PyPI"


def affects(record: dict, package: str, version: str) -> bool:
    try:
        v = Version(version)
    except InvalidVersion:
        return False
    name = canonicalize_name(package)
    for entry in record.get("affected") or []:
        pkg = entry.get("package") or {}
        if pkg.get("ecosystem") != ECOSYSTEM or canonicalize_name(str(pkg.get("name", ""))) != name:
            continue
        if version in (entry.get("versions") or []) or _listed(v, entry.get("versions") or []):
            return True
        for rng in entry.get("ranges") or []:
            if rng.get("type") in ("ECOSYSTEM", "SEMVER") and _in_range(v, rng.get("events") or []):
                return True
    return False


def fixed_versions(record: dict, package: str) -> list[str]:
    name = canonicalize_name(package)
    out = []
    for entry in record.get("affected") or []:
        if canonicalize_name(str((entry.get("package") or {}).get("name", ""))) != name:
            continue
        for rng in entry.get("ranges") or []:
            out += [e["fixed"] for e in rng.get("events") or [] if "fixed" in e]
    return sorted(set(out), key=_sort_key)


def _listed(v: Version, versions: list) -> bool:
    for item in versions:
        try:
            if Version(str(item)) == v:
                return True
        except InvalidVersion:
            continue
    return False


def _in_range(v: Version, events: list[dict]) -> bool:
    ordered = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in event:
                bound = _parse(event[kind])
                if bound is not None:
                    ordered.append((bound, kind))
    # At equal versions `introduced` sorts first, so "introduced X, fixed X" affects nothing.
    ordered.sort(key=lambda item: (item[0], item[1] != "introduced"))
    affected = False
    for bound, kind in ordered:
        if kind == "introduced" and v >= bound:
            affected = True
        elif kind == "fixed" and v >= bound:
            affected = False
        elif kind == "last_affected" and v > bound:
            affected = False
    return affected


def _parse(value) -> Version | None:
    if value == "0":
        return Version("0")
    try:
        return Version(str(value))
    except InvalidVersion:
        return None


def _sort_key(value: str):
    return _parse(value) or Version("0")
