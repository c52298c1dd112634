"""The risk rubric: how dangerous one change is, decided from snapshot facts, with the reason.

Categories follow the ones migration linters use (squawk, strong_migrations):
destructive, backward-incompatible, data-dependent, locking/rewrite, additive; plus
behaviour (same data, different results) and security. docs/schema.md has the rubric table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor_app.platform.vocabulary import RISKS

RISK_ORDER = {name: i for i, name in enumerate(RISKS)}
# Above this row estimate a blocking build or rewrite is long enough to matter.
LARGE_TABLE_ROWS = 100_000
# Objects applications name in their queries: renaming one breaks them.
REFERENCED_TYPES = {"schema", "table", "foreign table", "view", "materialized view", "column", "function",
                    "procedure", "aggregate", "window function", "type", "sequence"}


@dataclass(frozen=True)
class Verdict:
    risk: str
    category: str
    why: str


def max_risk(risks) -> str | None:
    risks = list(risks)
    return max(risks, key=RISK_ORDER.__getitem__) if risks else None


def worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=lambda v: RISK_ORDER[v.risk])


def _rows_phrase(rows: float | None) -> str:
    return "row count unknown" if rows is None else f"about {int(rows):,} rows"


def _populated(rows: float | None) -> bool:
    return rows is None or rows > 0


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
        unbounded = base in ("text", "clob") or width is None
        return ("text", float("inf") if unbounded else float(width), 0)
    if base in _TIME_RANK:
        return ("time", _TIME_RANK[base], 0)
    return (base, float(width) if width else float("inf"), float(scale or 0))


def type_change(before: str, after: str, rows: float | None) -> Verdict:
    (fam_a, w_a, s_a), (fam_b, w_b, s_b) = type_shape(before), type_shape(after)
    facts = f"{before} -> {after}, {_rows_phrase(rows)}"
    if fam_a == fam_b and (w_b < w_a or s_b < s_a):
        return Verdict("high", "backward-incompatible",
                       f"type narrowed ({facts}): existing or future values may no longer fit")
    if fam_a == fam_b and fam_a in ("text", "numeric") and w_b >= w_a and s_b == s_a:
        return Verdict("low", "additive", f"type widened without a rewrite ({facts})")
    if fam_a == fam_b:
        if _populated(rows):
            return Verdict("medium", "locking/rewrite",
                           f"type widened ({facts}): rewrites the table under an ACCESS EXCLUSIVE lock")
        return Verdict("low", "additive", f"type widened on an empty table ({facts})")
    if _populated(rows):
        return Verdict("high", "data-dependent",
                       f"type family changed ({facts}): every value is converted, conversion may fail")
    return Verdict("medium", "backward-incompatible", f"type family changed on an empty table ({facts})")


# --- privileges --------------------------------------------------------------------------

def _acl_map(grants: list[str] | None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in grants or []:
        grantee, _, rest = item.partition("=")
        privs = rest.split("/", 1)[0]
        out.setdefault(grantee or "PUBLIC", set()).update(privs)
    return out


def privilege_change(before: list[str] | None, after: list[str] | None) -> Verdict:
    a, b = _acl_map(before), _acl_map(after)
    revoked = {g: sorted(p - b.get(g, set())) for g, p in a.items() if p - b.get(g, set())}
    granted = {g: sorted(p - a.get(g, set())) for g, p in b.items() if p - a.get(g, set())}
    if revoked:
        who = ", ".join(f"{g}:{''.join(p)}" for g, p in sorted(revoked.items()))
        return Verdict("high", "backward-incompatible", f"REVOKE ({who}): roles that relied on it now fail")
    if "PUBLIC" in granted:
        return Verdict("high", "security", f"GRANT to PUBLIC ({''.join(granted['PUBLIC'])}): every role gains access")
    who = ", ".join(f"{g}:{''.join(p)}" for g, p in sorted(granted.items()))
    return Verdict("low", "additive", f"GRANT ({who})")


# --- the rubric --------------------------------------------------------------------------

def added(obj: dict, table_rows: float | None, table_rls: bool | None = None) -> Verdict:
    kind, attrs = obj["type"], obj["attrs"]
    if kind == "column":
        if (attrs.get("generated") or attrs.get("identity")) and _populated(table_rows):
            return Verdict("medium", "locking/rewrite",
                           f"generated/identity column fills every row ({_rows_phrase(table_rows)}): table rewrite")
        return Verdict("low", "additive", "new column")
    if kind == "constraint":
        if attrs.get("validated") is False:
            return Verdict("low", "additive", "added NOT VALID: existing rows are not checked")
        if _populated(table_rows):
            return Verdict("medium", "data-dependent",
                           f"{attrs.get('kind')} constraint checks all existing rows ({_rows_phrase(table_rows)}) "
                           "under a lock and fails if any row violates it")
        return Verdict("low", "additive", f"{attrs.get('kind')} constraint on an empty table")
    if kind == "index":
        if table_rows is None or table_rows > LARGE_TABLE_ROWS:
            return Verdict("medium", "locking/rewrite",
                           f"index build on a large table ({_rows_phrase(table_rows)}) blocks writes "
                           "unless built CONCURRENTLY")
        return Verdict("low", "additive", f"new index ({_rows_phrase(table_rows)})")
    if kind == "trigger":
        return Verdict("medium", "behaviour", "new trigger runs on every matching write")
    if kind == "policy":
        if table_rls:
            return Verdict("medium", "behaviour", "row level security is on: visible rows change")
        return Verdict("low", "additive", "policy has no effect until row level security is enabled")
    if kind == "partition":
        return Verdict("medium", "locking/rewrite",
                       f"ATTACH PARTITION to {attrs.get('of')} scans the table to validate its bound")
    if kind == "privilege":
        return privilege_change([], attrs.get("grants"))
    return Verdict("low", "additive", f"new {kind}")


def removed(obj: dict, table_rows: float | None, has_children: bool = False) -> Verdict:
    kind, attrs = obj["type"], obj["attrs"]
    if kind in ("table", "foreign table"):
        return Verdict("critical", "destructive", f"table dropped with its data ({_rows_phrase(obj.get('rows'))})")
    if kind == "column":
        return Verdict("critical", "destructive", f"column dropped with its data ({_rows_phrase(table_rows)})")
    if kind == "schema":
        if has_children:
            return Verdict("critical", "destructive", "non-empty schema dropped with everything in it")
        return Verdict("medium", "backward-incompatible", "empty schema dropped")
    if kind == "constraint":
        if attrs.get("kind") == "primary key":
            return Verdict("high", "backward-incompatible",
                           "primary key dropped: rows lose their identity, replication and ORMs rely on it")
        return Verdict("medium", "behaviour", f"{attrs.get('kind')} constraint no longer enforced")
    if kind == "index":
        if attrs.get("unique"):
            return Verdict("medium", "behaviour", "unique index dropped: uniqueness no longer enforced")
        return Verdict("medium", "behaviour", "index dropped: queries that used it may slow down")
    if kind == "partition":
        return Verdict("high", "backward-incompatible",
                       f"partition detached from {attrs.get('of')}: its rows vanish from queries on the parent")
    if kind in ("trigger", "policy"):
        return Verdict("medium", "behaviour", f"{kind} dropped: writes or visible rows behave differently")
    if kind == "comment":
        return Verdict("low", "additive", "comment removed")
    if kind == "privilege":
        return privilege_change(attrs.get("grants"), [])
    return Verdict("high", "backward-incompatible", f"{kind} dropped: anything that uses it fails")


def renamed(obj: dict) -> Verdict:
    if obj["type"] in REFERENCED_TYPES:
        return Verdict("high", "backward-incompatible",
                       f"{obj['type']} renamed: queries using the old name fail")
    return Verdict("low", "additive", f"{obj['type']} renamed: applications do not name it")


def modified(obj_before: dict, obj_after: dict, attr: str, table_rows: float | None) -> Verdict:
    kind = obj_after["type"]
    before, after = obj_before["attrs"].get(attr), obj_after["attrs"].get(attr)
    if attr == "owner":
        return Verdict("medium", "security", f"owner changed from {before} to {after}")
    judge = _MODIFIED_BY_KIND.get(kind) or _MODIFIED_BY_KIND_ATTR.get((kind, attr)) or _other_modified
    return judge(kind, attr, before, after, table_rows)


def _column_modified(kind: str, attr: str, before, after, table_rows: float | None) -> Verdict:
    if attr == "type":
        return type_change(before, after, table_rows)
    if attr == "not_null":
        if after and _populated(table_rows):
            return Verdict("high", "data-dependent",
                           f"SET NOT NULL on a populated column ({_rows_phrase(table_rows)}): full scan under "
                           "ACCESS EXCLUSIVE, fails on any NULL, inserts without a value now fail")
        if after:
            return Verdict("low", "additive", "SET NOT NULL on an empty table")
        return Verdict("low", "additive", "NOT NULL dropped")
    if attr == "default":
        if before is None:
            return Verdict("low", "additive", "default added")
        return Verdict("medium", "behaviour", "default changed or dropped: new rows get different values")
    if attr == "collation":
        return Verdict("medium", "behaviour", "collation changed: ordering and comparisons change, indexes rebuilt")
    return Verdict("medium", "behaviour", f"{attr} changed")


def _table_modified(kind: str, attr: str, before, after, table_rows: float | None) -> Verdict:
    if attr in ("rls_enabled", "rls_forced"):
        if after:
            return Verdict("high", "backward-incompatible",
                           "row level security enabled: roles without a matching policy see no rows")
        return Verdict("high", "security", "row level security disabled: policies no longer restrict rows")
    if attr == "unlogged":
        return Verdict("medium", "locking/rewrite",
                       f"SET {'UNLOGGED' if after else 'LOGGED'} rewrites the table ({_rows_phrase(table_rows)})"
                       + ("; unlogged data is lost on a crash" if after else ""))
    return Verdict("medium", "behaviour", f"{attr} changed")


def _enum_values_modified(kind: str, attr: str, before, after, table_rows: float | None) -> Verdict:
    old, new = list(before or []), list(after or [])
    it = iter(new)
    if all(v in it for v in old):
        return Verdict("low", "additive", f"enum values added: {', '.join(v for v in new if v not in old)}")
    return Verdict("high", "backward-incompatible", "enum value renamed or removed: stored values or code break")


def _index_validity_modified(kind: str, attr: str, before, after, table_rows: float | None) -> Verdict:
    if after:
        return Verdict("low", "additive", "index became valid")
    return Verdict("medium", "behaviour", "index is invalid: not used by queries, still maintained on writes")


def _other_modified(kind: str, attr: str, before, after, table_rows: float | None) -> Verdict:
    if kind == "constraint" and attr == "validated" and after:
        return Verdict("low", "additive", "constraint validated")
    if attr == "security_definer" and after:
        return Verdict("high", "security", "function now runs with its owner's privileges (SECURITY DEFINER)")
    if kind == "privilege" and attr == "grants":
        return privilege_change(before, after)
    if kind == "comment":
        return Verdict("low", "additive", "comment changed")
    if kind == "partition" and attr == "of":
        return Verdict("high", "backward-incompatible", f"partition moved from {before} to {after}")
    if kind == "sequence" and attr == "owned_by":
        return Verdict("low", "additive", "sequence ownership changed")
    if kind in ("view", "materialized view") and attr == "definition":
        return Verdict("medium", "behaviour", "view definition changed: its results differ")
    return Verdict("medium", "behaviour", f"{kind} {attr} changed")


# Every change to these kinds is judged by the kind's own rules, whatever the attribute.
_MODIFIED_BY_KIND = {"column": _column_modified, "table": _table_modified, "foreign table": _table_modified}
# These attributes have their own rules; the kind's other attributes fall to _other_modified.
_MODIFIED_BY_KIND_ATTR = {("type", "values"): _enum_values_modified, ("index", "valid"): _index_validity_modified}
