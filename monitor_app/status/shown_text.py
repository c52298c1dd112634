"""Text taken from a monitored system, made fit to show on a page.

Labels, paths, NOTIFY contexts and config values are set by whoever runs the monitored system: any
length, any type, and strings that may hold lone surrogates (which would make the response fail to
encode). Every such value goes through `shown` before it reaches a template; HTML escaping is the
template's job, so this only bounds and normalises.
"""

from __future__ import annotations

import json
from typing import Any

ELLIPSIS = "…"


def shown(value: Any, limit: int = 200) -> str:
    """`value` as at most `limit` characters of valid UTF-8 text; JSON for anything not a string."""
    if value is None:
        return ""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        except (TypeError, ValueError, RecursionError):
            value = repr(value)
    if len(value) > limit:
        value = value[:limit] + ELLIPSIS
    # A lone surrogate cannot be encoded: it becomes a visible \udcxx escape instead of an error.
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def shown_list(values: Any, items: int = 10, limit: int = 120) -> list[str]:
    """At most `items` entries of a list-like value as shown text; anything else as one entry."""
    if values is None or values == "":
        return []
    if not isinstance(values, (list, tuple)):
        return [shown(values, limit)]
    out = [shown(v, limit) for v in values[:items]]
    if len(values) > items:
        out.append(f"and {len(values) - items} more")
    return out
