"""Which assets a page shows: the label, engine and status filters of the query string.

Filtering happens in Python on the assets already loaded for the page: labels are a JSON
column whose querying differs between SQLite and PostgreSQL, and the page loads every live
asset anyway (to count statuses). Values come from a URL anyone can type, so each is bounded. The rows filtered carry labels
already redacted (DBMON_LABEL_DENYLIST), so a filter cannot be used to guess a hidden value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import urlencode

MAX_VALUE = 200
MAX_OPTIONS = 300
STATUSES = ("up", "down", "stopped", "unknown")


def _bounded(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:MAX_VALUE] or None


@dataclass(frozen=True)
class AssetFilter:
    label: str | None = None  # "key=value", or "key" for any value
    engine: str | None = None
    status: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "AssetFilter":
        status = _bounded(args.get("status"))
        return cls(label=_bounded(args.get("label")), engine=_bounded(args.get("engine")),
                   status=status if status in STATUSES else None)

    @property
    def active(self) -> bool:
        return bool(self.label or self.engine or self.status)

    def query_string(self) -> str:
        return urlencode({k: v for k, v in (("label", self.label), ("engine", self.engine),
                                            ("status", self.status)) if v})

    def matches(self, asset) -> bool:
        if self.engine and (asset.engine or "") != self.engine:
            return False
        if self.status and asset.status != self.status:
            return False
        if self.label:
            key, sep, value = self.label.partition("=")
            labels = asset.labels if isinstance(asset.labels, dict) else {}
            if key.strip() not in labels:
                return False
            if sep and str(labels[key.strip()]) != value.strip():
                return False
        return True

    def apply(self, assets: Iterable) -> list:
        return [a for a in assets if self.matches(a)]


def filter_options(assets: Iterable) -> dict[str, list[str]]:
    """The values the filter controls offer: what the loaded assets actually have."""
    engines: set[str] = set()
    labels: set[str] = set()
    for a in assets:
        if a.engine:
            engines.add(a.engine)
        if isinstance(a.labels, dict) and len(labels) < MAX_OPTIONS:
            labels.update(f"{k}={v}"[:MAX_VALUE] for k, v in a.labels.items() if isinstance(v, (str, int, float)))
    return {"engines": sorted(engines), "labels": sorted(labels)[:MAX_OPTIONS], "statuses": list(STATUSES)}
