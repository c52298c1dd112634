"""What the risk rubric knows about one change, read from the two snapshots.

The rubric (`rubric.py`) is a table of rules over these facts; nothing here decides a risk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

# Above this row estimate a blocking build or rewrite is long enough to matter.
LARGE_TABLE_ROWS = 100_000
# Objects applications name in their queries: renaming or dropping one breaks them.
REFERENCED_TYPES = {"schema", "table", "foreign table", "view", "materialized view", "column", "function",
                    "procedure", "aggregate", "window function", "type", "sequence"}
# For snapshots that predate the catalogue's own answer (`volatile_default`): the usual suspects.
_VOLATILE_CALL = re.compile(r"\b(clock_timestamp|random|gen_random_uuid|uuid_generate_v[14]|nextval|timeofday|"
                            r"txid_current|setseed)\s*\(", re.IGNORECASE)


# --- type widths -------------------------------------------------------------------------

_INT_RANK = {"smallint": 2, "int2": 2, "integer": 4, "int": 4, "int4": 4, "mediumint": 4,
             "bigint": 8, "int8": 8, "tinyint": 1}
_FLOAT_RANK = {"real": 4, "float4": 4, "double precision": 8, "float8": 8, "double": 8, "float": 8}
_TEXT = {"character varying", "varchar", "text", "character", "char", "nvarchar", "nchar", "clob",
         "varying character", "native character", "bpchar"}
_TIME_RANK = {"date": 1, "timestamp without time zone": 2, "timestamp": 2, "datetime": 2,
              "timestamp with time zone": 3, "timestamptz": 3}

# Spellings of one type across PostgreSQL, SQLite, SQLAlchemy and SQL parsers.
_ALIASES = {"serial": "integer", "serial4": "integer", "bigserial": "bigint", "serial8": "bigint",
            "smallserial": "smallint", "bool": "boolean", "jsonb": "json", "blob": "bytea",
            "binary": "bytea", "varbinary": "bytea", "largebinary": "bytea", "decimal": "numeric",
            "string": "text", "datetime": "timestamp", "timestamp(6)": "timestamp"}


def type_shape(type_name: str | None) -> tuple[str, float, float]:
    """(family, width, scale) of a declared type; width inf means unbounded."""
    if not type_name:
        return ("any", float("inf"), 0)
    t = type_name.strip().lower()
    t = _ALIASES.get(t, t)
    if t.endswith("[]"):
        return ("array:" + type_shape(t[:-2])[0], float("inf"), 0)
    m = re.fullmatch(r"([a-z ]+?)\s*(?:\((\d+)(?:\s*,\s*(\d+))?\))?", t)
    base, width, scale = (m.group(1), m.group(2), m.group(3)) if m else (t, None, None)
    base = _ALIASES.get(base, base)
    if base in _INT_RANK or base == "integer":
        return ("integer", _INT_RANK.get(base, 8), 0)
    if base in _FLOAT_RANK:
        return ("float", _FLOAT_RANK[base], 0)
    if base in ("numeric", "decimal"):
        return ("numeric", float(width) if width else float("inf"), float(scale or 0))
    if base in _TEXT:
        bounded = width is not None and base not in ("text", "clob")
        return ("text", float(width) if width is not None and bounded else float("inf"), 0)
    if base in _TIME_RANK:
        return ("time", _TIME_RANK[base], 0)
    return (base, float(width) if width else float("inf"), float(scale or 0))


def type_shift(before: str | None, after: str | None) -> str:
    """How a column type changed: narrowed, family, widened in place, widened by a rewrite."""
    (fam_a, w_a, s_a), (fam_b, w_b, s_b) = type_shape(before), type_shape(after)
    if fam_a != fam_b:
        return "family"
    if w_b < w_a or s_b < s_a:
        return "narrowed"
    # PostgreSQL relabels a longer varchar, text or a wider numeric of the same scale in the
    # catalogue; every other widening (integer -> bigint, real -> double) rewrites the table.
    if fam_a in ("text", "numeric") and s_b == s_a:
        return "widened in place"
    return "widened by a rewrite"


# --- privileges --------------------------------------------------------------------------

def acl_map(grants: list[str] | None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in grants or []:
        grantee, _, rest = item.partition("=")
        privs = rest.split("/", 1)[0]
        out.setdefault(grantee or "PUBLIC", set()).update(privs)
    return out


def _acl_gain(before: list[str] | None, after: list[str] | None) -> dict[str, list[str]]:
    a, b = acl_map(before), acl_map(after)
    return {g: sorted(p - a.get(g, set())) for g, p in b.items() if p - a.get(g, set())}


def _who(acl: dict[str, list[str]]) -> str:
    return ", ".join(f"{g}:{''.join(p)}" for g, p in sorted(acl.items()))


# --- one change --------------------------------------------------------------------------

@dataclass
class Change:
    """One change as the rubric sees it. `obj` is the object after the change (before it, for
    a removal); `before`/`after` are the changed attribute's values for a modification."""

    action: str  # "added", "removed", "renamed" or "modified"
    obj: dict
    rows: float | None = None  # row estimate of the table the object is, or is on
    attr: str | None = None
    before: Any = None
    after: Any = None
    rls: bool | None = None  # row level security of the table a policy is on
    has_children: bool = False  # a removed schema still held objects

    @property
    def kind(self) -> str:
        return self.obj["type"]

    @property
    def attrs(self) -> dict:
        return self.obj["attrs"]

    def is_(self, action: str, *kinds: str, attr: str | None = None) -> bool:
        return self.action == action and (not kinds or self.kind in kinds) and (attr is None or self.attr == attr)

    @property
    def populated(self) -> bool:
        return self.rows is None or self.rows > 0

    @property
    def large(self) -> bool:
        return self.rows is None or self.rows > LARGE_TABLE_ROWS

    @property
    def rows_phrase(self) -> str:
        if self.rows is None:
            return "row count unknown"
        return "1 row" if self.rows == 1 else f"about {int(self.rows):,} rows"

    @property
    def volatile_default(self) -> bool:
        """The default is evaluated per row (clock_timestamp(), random(), nextval(), ...)."""
        if self.obj.get("volatile_default") is not None:
            return bool(self.obj["volatile_default"])
        return bool(_VOLATILE_CALL.search(self.attrs.get("default") or ""))

    @property
    def fills_every_row(self) -> bool:
        """An added column whose value must be computed and written into every existing row."""
        attrs = self.attrs
        return bool(attrs.get("identity") or attrs.get("generated") == "stored"
                    or (attrs.get("default") is not None and self.volatile_default))

    @property
    def default(self) -> str | None:
        return self.attrs.get("default")

    @property
    def stable_call_default(self) -> bool:
        """now(), CURRENT_TIMESTAMP and the like: evaluated once, when the column is added."""
        return bool(re.search(r"\(|current_|localtime", self.default or "", re.IGNORECASE))

    @cached_property
    def type_shift(self) -> str:
        return type_shift(self.before, self.after)

    @property
    def rewrites(self) -> bool:
        """PostgreSQL rewrites the whole table under ACCESS EXCLUSIVE for this change."""
        if self.is_("added", "column"):
            return self.fills_every_row
        if self.is_("modified", "column", attr="type"):
            return self.type_shift != "widened in place"
        return self.is_("modified", "table", attr="unlogged")

    @cached_property
    def revoked(self) -> dict[str, list[str]]:
        before, after = self._grants
        return _acl_gain(after, before)

    @cached_property
    def granted(self) -> dict[str, list[str]]:
        before, after = self._grants
        return _acl_gain(before, after)

    @property
    def _grants(self) -> tuple[list[str] | None, list[str] | None]:
        if self.action == "added":
            return [], self.attrs.get("grants")
        if self.action == "removed":
            return self.attrs.get("grants"), []
        return self.before, self.after

    @property
    def revoked_who(self) -> str:
        return _who(self.revoked)

    @property
    def granted_who(self) -> str:
        return _who(self.granted)

    @property
    def enum_values_only_added(self) -> bool:
        it = iter(self.after or [])
        return all(v in it for v in self.before or [])

    @property
    def enum_values_added(self) -> str:
        return ", ".join(v for v in self.after or [] if v not in (self.before or []))
