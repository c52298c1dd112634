"""Labels are free text set by whoever starts a container or writes the config, and people put
tokens and passwords in them. Values of labels whose names match the deny-list are replaced
before they leave through the API; the names stay, so it is visible that something is hidden."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Iterable

REDACTED = "[redacted]"
# Dict-valued fields that hold labels, wherever they sit (asset details, event payloads, alerts).
LABEL_FIELDS = frozenset({"labels", "group_labels"})


class LabelRedactor:
    def __init__(self, patterns: Iterable[str]):
        self.patterns = [p.lower() for p in patterns if p]

    def hides(self, name: str) -> bool:
        lowered = name.lower()
        return any(fnmatchcase(lowered, p) for p in self.patterns)

    def labels(self, labels: dict) -> dict:
        return {k: REDACTED if self.hides(str(k)) else v for k, v in labels.items()}

    def within(self, value: Any) -> Any:
        """A copy of `value` with every label dict in it redacted, at any depth."""
        if isinstance(value, dict):
            return {k: self.labels(v) if k in LABEL_FIELDS and isinstance(v, dict) else self.within(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self.within(v) for v in value]
        return value
