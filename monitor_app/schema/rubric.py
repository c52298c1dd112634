"""The risk rubric as a table: the first rule whose condition holds rates the change.

Risk follows what breaks for running applications and what waits on locks, not only what
data is kept. Each row mirrors a row of the table in docs/schema.md (same id, same risk) and
has its own test in tests/schema/test_rubric.py; a test checks the three stay in step.
Locks named are PostgreSQL's; SQLite takes its one database write lock for any DDL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monitor_app.schema.change_facts import REFERENCED_TYPES, Change


@dataclass(frozen=True)
class Rule:
    id: str
    change: str  # the change, as the docs table says it
    risk: str
    category: str
    why: str  # formatted with the Change as `c`
    when: Callable[[Change], bool]
    risk_if_large: str | None = None  # a rewrite of a large table blocks everything for long


def _column_added(c: Change) -> bool:
    return c.is_("added", "column")


def _not_null_without_default(c: Change) -> bool:
    return bool(c.attrs.get("not_null")) and c.default is None and not c.fills_every_row


RUBRIC: tuple[Rule, ...] = (
    # --- added ----------------------------------------------------------------------------
    Rule("add-column-not-null-no-default", "column added NOT NULL without a default", "high",
         "backward-incompatible",
         "NOT NULL column without a default: every INSERT that does not name it fails, even on an empty table",
         lambda c: _column_added(c) and _not_null_without_default(c)),
    Rule("add-column-rewrite", "column added with a volatile default (`clock_timestamp()`, `random()`, "
         "`gen_random_uuid()`, serial), identity or stored generated, on a populated table", "medium",
         "locking/rewrite",
         "new column computed for every row ({c.rows_phrase}): the table is rewritten under ACCESS EXCLUSIVE, "
         "reads and writes wait",
         lambda c: _column_added(c) and c.fills_every_row and c.populated, risk_if_large="high"),
    Rule("add-column-rewrite-empty", "column added with a volatile default, identity or stored generated, "
         "on an empty table", "low", "additive",
         "new column computed per row, but the table is empty: nothing to rewrite",
         lambda c: _column_added(c) and c.fills_every_row),
    Rule("add-column-stable-default", "column added with `now()` or another non-volatile call as default", "low",
         "additive",
         "new column with a default evaluated once (existing rows all get the same value): no rewrite, "
         "a brief ACCESS EXCLUSIVE",
         lambda c: _column_added(c) and not c.fills_every_row and c.stable_call_default),
    Rule("add-column-constant-default", "column added with a constant default (NULL or NOT NULL)", "low",
         "additive",
         "new column with a constant default: stored once in the catalogue, no rewrite; writers that omit it "
         "get the default",
         lambda c: _column_added(c) and c.default is not None),
    Rule("add-column-nullable", "nullable column added without a default", "low", "additive",
         "new nullable column: catalogue only, a brief ACCESS EXCLUSIVE; writers and readers carry on",
         _column_added),
    Rule("add-unique-index", "unique index added", "medium", "backward-incompatible",
         "unique index ({c.rows_phrase}): writers inserting a duplicate now fail; the build fails on existing "
         "duplicates and, unless built CONCURRENTLY (the catalogue does not say), blocks writes",
         lambda c: c.is_("added", "index") and bool(c.attrs.get("unique"))),
    Rule("add-index-large", "index added on a large table (over 100,000 rows)", "medium", "locking/rewrite",
         "index build on a large table ({c.rows_phrase}) blocks writes for its whole duration unless built "
         "CONCURRENTLY, which the catalogue does not record",
         lambda c: c.is_("added", "index") and c.large),
    Rule("add-index", "index added on a smaller table", "low", "additive",
         "new index ({c.rows_phrase}): a short build; writes wait only for it (CONCURRENTLY or not, the "
         "catalogue does not say)",
         lambda c: c.is_("added", "index")),
    Rule("add-constraint-not-valid", "foreign key or CHECK added NOT VALID", "low", "additive",
         "added NOT VALID: existing rows are not checked, only a brief lock; new writes are checked",
         lambda c: c.is_("added", "constraint") and c.attrs.get("validated") is False),
    Rule("add-constraint-populated", "validated constraint added to a populated table", "medium", "data-dependent",
         "{c.attrs[kind]} constraint checks all existing rows ({c.rows_phrase}) under a lock that blocks "
         "writes (ACCESS EXCLUSIVE for CHECK) and fails if any row violates it; writers that violate it now fail",
         lambda c: c.is_("added", "constraint") and c.populated),
    Rule("add-constraint-empty", "constraint added to an empty table", "low", "additive",
         "{c.attrs[kind]} constraint on an empty table: nothing to check",
         lambda c: c.is_("added", "constraint")),
    Rule("add-trigger", "trigger added", "medium", "behaviour",
         "new trigger runs on every matching write: it can slow, change or reject writes",
         lambda c: c.is_("added", "trigger")),
    Rule("add-policy-rls-on", "policy added where row level security is on", "medium", "behaviour",
         "row level security is on: the rows each role sees or may write change",
         lambda c: c.is_("added", "policy") and bool(c.rls)),
    Rule("add-policy-rls-off", "policy added where row level security is off", "low", "additive",
         "policy has no effect until row level security is enabled",
         lambda c: c.is_("added", "policy")),
    Rule("attach-partition", "partition attached", "medium", "locking/rewrite",
         "ATTACH PARTITION to {c.attrs[of]} scans the table to validate its bound; queries on the parent "
         "now see its rows",
         lambda c: c.is_("added", "partition")),
    Rule("add-table", "table added", "low", "additive", "new table: nothing uses it yet, no lock on others",
         lambda c: c.is_("added", "table")),
    Rule("add-view", "view added", "low", "additive", "new view: nothing uses it yet",
         lambda c: c.is_("added", "view", "materialized view")),
    Rule("add-function", "function or procedure added", "low", "additive",
         "new function: nothing calls it yet (a new overload can change which one existing calls pick)",
         lambda c: c.is_("added", "function", "procedure", "aggregate", "window function")),
    Rule("add-sequence", "sequence added", "low", "additive", "new sequence: nothing uses it yet",
         lambda c: c.is_("added", "sequence")),
    Rule("add-extension", "extension added", "low", "additive",
         "new extension: adds its own functions and types, changes no existing object",
         lambda c: c.is_("added", "extension")),
    # --- removed --------------------------------------------------------------------------
    Rule("drop-table", "table dropped", "critical", "destructive",
         "table dropped with its data ({c.rows_phrase}); every query naming it fails",
         lambda c: c.is_("removed", "table", "foreign table")),
    Rule("drop-column", "column dropped", "critical", "destructive",
         "column dropped with its data ({c.rows_phrase}); queries naming it fail",
         lambda c: c.is_("removed", "column")),
    Rule("drop-schema", "non-empty schema dropped", "critical", "destructive",
         "non-empty schema dropped with everything in it",
         lambda c: c.is_("removed", "schema") and c.has_children),
    Rule("drop-empty-schema", "empty schema dropped", "medium", "backward-incompatible",
         "empty schema dropped: a search_path or GRANT naming it may fail",
         lambda c: c.is_("removed", "schema")),
    Rule("drop-primary-key", "primary key dropped", "high", "backward-incompatible",
         "primary key dropped: rows lose their identity; logical replication of UPDATE/DELETE and ORMs rely on it",
         lambda c: c.is_("removed", "constraint") and c.attrs.get("kind") == "primary key"),
    Rule("drop-constraint", "other constraint dropped", "medium", "behaviour",
         "{c.attrs[kind]} constraint no longer enforced: writes it refused are now accepted",
         lambda c: c.is_("removed", "constraint")),
    Rule("drop-unique-index", "unique index dropped", "medium", "behaviour",
         "unique index dropped: uniqueness no longer enforced; queries that used it may slow down",
         lambda c: c.is_("removed", "index") and bool(c.attrs.get("unique"))),
    Rule("drop-index", "index dropped", "medium", "behaviour",
         "index dropped: queries that used it may turn into full scans (a plain DROP INDEX also waits "
         "for ACCESS EXCLUSIVE)",
         lambda c: c.is_("removed", "index")),
    Rule("detach-partition", "partition detached", "high", "backward-incompatible",
         "partition detached from {c.attrs[of]}: its rows vanish from queries on the parent",
         lambda c: c.is_("removed", "partition")),
    Rule("drop-trigger", "trigger or policy dropped", "medium", "behaviour",
         "{c.kind} dropped: writes or visible rows behave differently",
         lambda c: c.is_("removed", "trigger", "policy")),
    Rule("drop-view", "view dropped", "high", "backward-incompatible", "view dropped: queries reading it fail",
         lambda c: c.is_("removed", "view", "materialized view")),
    Rule("drop-function", "function or procedure dropped", "high", "backward-incompatible",
         "{c.kind} dropped: callers (and defaults, triggers or views using it) fail",
         lambda c: c.is_("removed", "function", "procedure", "aggregate", "window function")),
    Rule("drop-sequence", "sequence dropped", "high", "backward-incompatible",
         "sequence dropped: writers relying on a default that calls nextval() fail",
         lambda c: c.is_("removed", "sequence")),
    Rule("drop-extension", "extension dropped", "high", "backward-incompatible",
         "extension dropped: queries using its functions, types or operators fail",
         lambda c: c.is_("removed", "extension")),
    Rule("drop-comment", "comment removed", "low", "additive", "comment removed",
         lambda c: c.is_("removed", "comment")),
    # --- privileges (granted, revoked or changed) -----------------------------------------
    Rule("revoke", "privilege revoked", "high", "backward-incompatible",
         "REVOKE ({c.revoked_who}): roles that relied on it now fail",
         lambda c: c.kind == "privilege" and bool(c.revoked)),
    Rule("grant-public", "privilege granted to PUBLIC", "high", "security",
         "GRANT to PUBLIC ({c.granted_who}): every role gains access",
         lambda c: c.kind == "privilege" and "PUBLIC" in c.granted),
    Rule("grant", "privilege granted to a role", "low", "additive", "GRANT ({c.granted_who})",
         lambda c: c.kind == "privilege"),
    # --- renamed --------------------------------------------------------------------------
    Rule("rename-table", "table renamed (or moved to another schema)", "high", "backward-incompatible",
         "table renamed: queries using the old name fail",
         lambda c: c.is_("renamed", "table", "foreign table")),
    Rule("rename-column", "column renamed", "high", "backward-incompatible",
         "column renamed: queries using the old name fail",
         lambda c: c.is_("renamed", "column")),
    Rule("rename-referenced", "view, function, type, sequence or schema renamed", "high", "backward-incompatible",
         "{c.kind} renamed: queries using the old name fail",
         lambda c: c.action == "renamed" and c.kind in REFERENCED_TYPES),
    Rule("rename-internal", "index, constraint, trigger or policy renamed", "low", "additive",
         "{c.kind} renamed: applications do not name it",
         lambda c: c.action == "renamed"),
    # --- modified -------------------------------------------------------------------------
    Rule("owner", "owner changed", "medium", "security",
         "owner changed from {c.before} to {c.after}: the new owner may alter or drop it",
         lambda c: c.is_("modified", attr="owner")),
    Rule("type-narrowed", "column type narrowed (`varchar(40)` -> `varchar(20)`, `bigint` -> `integer`)", "high",
         "backward-incompatible",
         "type narrowed ({c.before} -> {c.after}, {c.rows_phrase}): values that no longer fit are refused, "
         "existing rows are checked under ACCESS EXCLUSIVE",
         lambda c: c.is_("modified", "column", attr="type") and c.type_shift == "narrowed"),
    Rule("type-family-populated", "column type family changed on a populated table (`text` -> `integer`)", "high",
         "data-dependent",
         "type family changed ({c.before} -> {c.after}, {c.rows_phrase}): every value is converted in a rewrite "
         "under ACCESS EXCLUSIVE, conversion may fail, clients get another type",
         lambda c: c.is_("modified", "column", attr="type") and c.type_shift == "family" and c.populated),
    Rule("type-family-empty", "column type family changed on an empty table", "medium", "backward-incompatible",
         "type family changed ({c.before} -> {c.after}) on an empty table: clients get another type",
         lambda c: c.is_("modified", "column", attr="type") and c.type_shift == "family"),
    Rule("type-widened-in-place", "column type widened without a rewrite (`varchar(n)` -> `varchar(m>n)` or "
         "`text`, numeric precision up)", "low", "additive",
         "type widened in the catalogue only ({c.before} -> {c.after}): no rewrite, no scan",
         lambda c: c.is_("modified", "column", attr="type") and c.type_shift == "widened in place"),
    Rule("type-widened-rewrite", "column type widened by a rewrite (`integer` -> `bigint`), populated table",
         "medium", "locking/rewrite",
         "type widened ({c.before} -> {c.after}, {c.rows_phrase}): rewrites the table under ACCESS EXCLUSIVE, "
         "reads and writes wait",
         lambda c: c.is_("modified", "column", attr="type") and c.populated, risk_if_large="high"),
    Rule("type-widened-empty", "column type widened by a rewrite on an empty table", "low", "additive",
         "type widened on an empty table ({c.before} -> {c.after}): nothing to rewrite",
         lambda c: c.is_("modified", "column", attr="type")),
    Rule("set-not-null-populated", "SET NOT NULL on a populated table", "high", "data-dependent",
         "SET NOT NULL ({c.rows_phrase}): full scan under ACCESS EXCLUSIVE, fails on any NULL; writers that "
         "send NULL or omit a column without default now fail",
         lambda c: c.is_("modified", "column", attr="not_null") and bool(c.after) and c.populated),
    Rule("set-not-null-empty", "SET NOT NULL on an empty table", "medium", "backward-incompatible",
         "SET NOT NULL on an empty table: no scan, but writers that send NULL or omit a column without "
         "default now fail",
         lambda c: c.is_("modified", "column", attr="not_null") and bool(c.after)),
    Rule("drop-not-null", "DROP NOT NULL", "low", "additive",
         "NOT NULL dropped: catalogue only; readers that assume a value may later meet NULL",
         lambda c: c.is_("modified", "column", attr="not_null")),
    Rule("generated-expression-changed", "stored generated column's expression changed (`SET EXPRESSION`, "
         "PostgreSQL 17)", "medium", "locking/rewrite",
         "generation expression changed: the column is recomputed for every row ({c.rows_phrase}), the table "
         "rewritten under ACCESS EXCLUSIVE",
         lambda c: c.is_("modified", "column", attr="default") and c.attrs.get("generated") == "stored",
         risk_if_large="high"),
    Rule("default-added", "default added", "low", "additive",
         "default added: writers that omit the column get a value instead of NULL",
         lambda c: c.is_("modified", "column", attr="default") and c.before is None),
    Rule("default-dropped-not-null", "default dropped from a NOT NULL column", "high", "backward-incompatible",
         "default dropped from a NOT NULL column: writers that omit it now fail",
         lambda c: c.is_("modified", "column", attr="default") and c.after is None and bool(c.attrs.get("not_null"))),
    Rule("default-changed", "default changed, or dropped from a nullable column", "medium", "behaviour",
         "default changed or dropped: new rows get different values",
         lambda c: c.is_("modified", "column", attr="default")),
    Rule("collation", "column collation changed", "medium", "behaviour",
         "collation changed: ordering and comparisons change, indexes on it are rebuilt",
         lambda c: c.is_("modified", "column", attr="collation")),
    Rule("rls-enabled", "row level security enabled or forced", "high", "backward-incompatible",
         "row level security enabled: roles without a matching policy see no rows",
         lambda c: c.action == "modified" and c.attr in ("rls_enabled", "rls_forced") and bool(c.after)),
    Rule("rls-disabled", "row level security disabled", "high", "security",
         "row level security disabled: policies no longer restrict rows",
         lambda c: c.action == "modified" and c.attr in ("rls_enabled", "rls_forced")),
    Rule("set-logged", "SET LOGGED / UNLOGGED", "medium", "locking/rewrite",
         "SET LOGGED/UNLOGGED rewrites the table ({c.rows_phrase}) under ACCESS EXCLUSIVE; unlogged data is lost "
         "on a crash and not replicated",
         lambda c: c.is_("modified", "table", attr="unlogged"), risk_if_large="high"),
    Rule("validate-constraint", "constraint validated (VALIDATE CONSTRAINT)", "low", "additive",
         "constraint validated: the scan holds SHARE UPDATE EXCLUSIVE, reads and writes continue",
         lambda c: c.is_("modified", "constraint", attr="validated") and bool(c.after)),
    Rule("security-definer", "function made SECURITY DEFINER", "high", "security",
         "function now runs with its owner's privileges (SECURITY DEFINER)",
         lambda c: c.is_("modified", attr="security_definer") and bool(c.after)),
    Rule("function-changed", "function body, volatility, result or settings changed", "medium", "behaviour",
         "{c.kind} {c.attr} changed: callers get different results",
         lambda c: c.is_("modified", "function", "procedure", "aggregate", "window function")),
    Rule("view-changed", "view definition changed", "medium", "behaviour",
         "view definition changed: its results differ",
         lambda c: c.is_("modified", "view", "materialized view", attr="definition")),
    Rule("trigger-changed", "trigger enabled, disabled or redefined", "medium", "behaviour",
         "trigger {c.attr} changed ({c.before} -> {c.after}): writes behave differently",
         lambda c: c.is_("modified", "trigger")),
    Rule("sequence-owner", "sequence OWNED BY changed", "low", "additive",
         "sequence ownership changed: only what a DROP of the column takes with it",
         lambda c: c.is_("modified", "sequence", attr="owned_by")),
    Rule("sequence-changed", "sequence parameters changed (increment, bounds, cycle)", "medium", "behaviour",
         "sequence {c.attr} changed ({c.before} -> {c.after}): the values handed to writers change",
         lambda c: c.is_("modified", "sequence")),
    Rule("enum-value-added", "enum value added", "low", "additive",
         "enum values added: {c.enum_values_added} (catalogue only; readers mapping every value may meet a new one)",
         lambda c: c.is_("modified", "type", attr="values") and c.enum_values_only_added),
    Rule("enum-value-removed", "enum value renamed or removed", "high", "backward-incompatible",
         "enum value renamed or removed: stored values or code using the old label break",
         lambda c: c.is_("modified", "type", attr="values")),
    Rule("extension-version", "extension updated", "medium", "behaviour",
         "extension {c.attr} changed ({c.before} -> {c.after}): its functions and types may behave differently",
         lambda c: c.is_("modified", "extension")),
    Rule("index-valid", "index became valid", "low", "additive", "index became valid: queries can use it",
         lambda c: c.is_("modified", "index", attr="valid") and bool(c.after)),
    Rule("index-invalid", "index became invalid", "medium", "behaviour",
         "index is invalid: not used by queries, still maintained on writes",
         lambda c: c.is_("modified", "index", attr="valid")),
    Rule("partition-moved", "partition moved to another parent", "high", "backward-incompatible",
         "partition moved from {c.before} to {c.after}",
         lambda c: c.is_("modified", "partition", attr="of")),
    Rule("comment", "comment added or changed", "low", "additive", "comment {c.action}",
         lambda c: c.kind == "comment"),
    Rule("other-added", "anything else added (schema, type, ...)", "low", "additive", "new {c.kind}",
         lambda c: c.action == "added"),
    Rule("other-dropped", "anything else dropped (type, ...)", "high", "backward-incompatible",
         "{c.kind} dropped: anything that uses it fails",
         lambda c: c.action == "removed"),
    Rule("other-changed", "any other attribute changed", "medium", "behaviour", "{c.kind} {c.attr} changed",
         lambda c: True),
)
