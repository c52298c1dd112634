"""The dated list of PostgreSQL releases that version findings are judged against.

A copy ships with dbmon (`postgres_releases.json`); `DBMON_POSTURE_RELEASE_LIST` names a newer
one, so a deployment can stay current between dbmon upgrades. Every finding says which list
(by its date) it used, because a stale list under-reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from monitor_app.config.section import ConfigSection, validation_errors
from monitor_app.errors import ConfigError

SHIPPED = Path(__file__).with_name("postgres_releases.json")
# A list older than this is called stale in the API: newer minors may exist that it does not know.
STALE_AFTER_DAYS = 120


class _Branch(ConfigSection):
    latest: str = Field(pattern=r"^\d+\.\d+(\.\d+)?$")
    released: date
    end_of_life: date


class _ReleaseFile(ConfigSection):
    as_of: date
    source: str = ""
    branches: dict[str, _Branch] = Field(min_length=1)


@dataclass(frozen=True)
class Branch:
    name: str
    latest: str
    latest_minor: int
    released: date
    end_of_life: date


@dataclass(frozen=True)
class ReleaseList:
    as_of: date
    branches: dict[str, Branch]
    origin: str

    def age_days(self, today: date) -> int:
        return (today - self.as_of).days

    def describe(self) -> str:
        return f"release list of {self.as_of.isoformat()}"


def branch_and_minor(version: str) -> tuple[str, int]:
    """`15.4` -> ("15", 4); before 10 the branch had two parts: `9.6.24` -> ("9.6", 24)."""
    parts = version.split(".")
    if int(parts[0]) < 10:
        return ".".join(parts[:2]), int(parts[2]) if len(parts) > 2 else 0
    return parts[0], int(parts[1])


def parse_release_list(data: Any, origin: str) -> ReleaseList:
    try:
        parsed = _ReleaseFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_errors(exc), origin) from None
    branches = {}
    for name, b in parsed.branches.items():
        branch, minor = branch_and_minor(b.latest)
        if branch != name:
            raise ConfigError([(f"branches.{name}.latest", f"{b.latest} is not a {name}.x release")], origin)
        branches[name] = Branch(name, b.latest, minor, b.released, b.end_of_life)
    return ReleaseList(parsed.as_of, branches, origin)


def load_release_list(path: Path | None = None) -> ReleaseList:
    path = path or SHIPPED
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read: {exc.strerror}")], str(path)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([(f"line {exc.lineno}", f"invalid JSON: {exc.msg}")], str(path)) from None
    return parse_release_list(data, str(path))


def version_key(branch: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", branch))
