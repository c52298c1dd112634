"""Diff two snapshots into change records.

    {"action": "added" | "removed" | "modified", "object_type": ..., "object": ...,
     "risk": "low" | "medium" | "high" | "critical", "renamed_from": old name | None,
     "detail": {"before": ..., "after": ..., "why": ..., "category": ...}}

Objects are matched by key (OIDs on PostgreSQL), then by type and name for objects that
carry no data (an index rebuilt CONCURRENTLY or a view dropped and recreated unchanged is
no change), then on SQLite, which has no OIDs, by content and by the b-tree root page a
table rename keeps (a table or column whose definition is unchanged but whose name is new
was renamed), and on MySQL and MariaDB, keyed by name too, first by InnoDB's table id.
Both inputs are first made canonical documents, so a live read, a saved file
and a stored version give the same answer. Children of an added or
removed object are folded into it; attribute changes that a rename explains (a view's
text naming the renamed table) are not repeated.
"""

from __future__ import annotations

import json
import re
from typing import Any

from monitor_app.schema import risk as rubric
from monitor_app.schema.snapshot_format import canonical

# Dropping and recreating one of these with the same name and content loses nothing.
DATALESS_TYPES = {"view", "materialized view", "index", "constraint", "trigger", "function", "procedure",
                  "aggregate", "window function", "policy", "type", "extension"}
# Changing schema is a rename for these (ALTER ... SET SCHEMA); children only follow their parent.
MOVABLE_TYPES = {"table", "foreign table", "view", "materialized view", "sequence", "function", "procedure",
                 "aggregate", "window function", "type"}
FOLLOWERS = {"comment", "privilege"}
# Objects whose name is their owner's: a rename of the owner is not theirs.
NAME_FOLLOWERS = FOLLOWERS | {"partition"}
ORDER = {"removed": 0, "modified": 1, "added": 2}


def _fingerprint(value: Any) -> str:
    """Equal for equal content whatever the key order: a file, the store and a live read agree."""
    return json.dumps(value, sort_keys=True, default=str)


def _wrapped(key: str) -> tuple[str, str]:
    for prefix in ("acl:", "comment:", "part:"):
        if key.startswith(prefix):
            return prefix, key[len(prefix):]
    return "", key


class _Matcher:
    """Maps each new key to the old key of the same object (identity by default)."""

    def __init__(self, old: dict, new: dict, by_name: bool):
        self.old, self.new = old, new
        self.alias: dict[str, str] = {}
        self._pair_dataless()
        if by_name:
            self._pair_by_content()

    def old_key(self, new_key: str) -> str:
        prefix, base = _wrapped(new_key)
        if prefix:
            return prefix + self.old_key(base)
        return self.alias.get(new_key, new_key)

    def unmatched(self) -> tuple[set[str], set[str]]:
        mapped = {self.old_key(k) for k in self.new}
        removed = {k for k in self.old if k not in mapped}
        added = {k for k in self.new if self.old_key(k) not in self.old}
        return removed, added

    def _candidates(self, types: set[str]) -> tuple[list[str], list[str]]:
        # Sorted: when two objects fit equally, the answer must not depend on set order.
        removed, added = self.unmatched()
        return (sorted(k for k in removed if self.old[k]["type"] in types),
                sorted(k for k in added if self.new[k]["type"] in types))

    def _pair_dataless(self) -> None:
        gone, new = self._candidates(DATALESS_TYPES)
        by_name = {(self.old[k]["type"], self.old[k]["name"]): k for k in gone}
        for k in new:
            match = by_name.pop((self.new[k]["type"], self.new[k]["name"]), None)
            if match is not None:
                self.alias[k] = match

    @staticmethod
    def _signature(snap: dict, key: str, parent: str | None, *, strict: bool) -> Any:
        """What stays the same when a table or view is renamed (SQLite has no ALTER INDEX RENAME)."""
        obj = snap[key]
        if obj["type"] == "view":  # its text starts with its own name: compare the query only
            return ("view", parent, (obj["attrs"].get("definition") or "").partition(" AS ")[2])
        columns = [c for c in snap.values() if c["parent"] == key and c["type"] == "column"]
        if strict:
            shape = sorted(_fingerprint((c["local"], c["attrs"])) for c in columns)
            return ("table", parent, _fingerprint(obj["attrs"]), tuple(shape))
        # Loose: a table renamed together with some of its columns keeps their order and types.
        return ("table", parent, tuple(sorted((c.get("position", 0), _fingerprint(c["attrs"])) for c in columns)))

    @staticmethod
    def _column_names(snap: dict, key: str) -> set[str]:
        return {c["local"] for c in snap.values() if c["parent"] == key and c["type"] == "column"}

    def _keeps_half_the_columns(self, old_key: str, new_key: str) -> bool:
        # A strict majority: a freed page reused by a new table that shares only an `id` column
        # with the dropped one must stay a drop (critical), not hide as a rename.
        names = self._column_names(self.new, new_key)
        return 2 * len(names & self._column_names(self.old, old_key)) > len(names)

    def _pair_by_content(self) -> None:
        # Strongest evidence first: a server's table id that RENAME keeps and nothing reuses
        # (InnoDB's, on MySQL and MariaDB); the same definition and columns under a new name; then
        # SQLite's b-tree root page, which a rename keeps (a page freed by a DROP may be reused,
        # and VACUUM renumbers pages, so it counts only with half the column names kept); then
        # the same column shapes with half the names kept.
        self._pair_by_table_id()
        self._pair_relations(strict=True)
        self._pair_by_rootpage()
        self._pair_relations(strict=False)
        self._pair_children()
        self._pair_columns()
        self._pair_derived_names()
        self._pair_same_content()

    def _pair_relations(self, *, strict: bool) -> None:
        gone, new = self._candidates({"table", "view"})
        sigs: dict[Any, list[str]] = {}
        for k in gone:
            sigs.setdefault(self._signature(self.old, k, self.old[k]["parent"], strict=strict), []).append(k)
        for k in new:
            parent = self.old_key(self.new[k]["parent"]) if self.new[k]["parent"] else None
            pool = sigs.get(self._signature(self.new, k, parent, strict=strict)) or []
            if not strict:
                pool = [o for o in pool if self._keeps_half_the_columns(o, k)]
            if pool:
                self.alias[k] = pool[0]
                for candidates in sigs.values():
                    if pool[0] in candidates:
                        candidates.remove(pool[0])

    def _pair_by_table_id(self) -> None:
        gone, new = self._candidates({"table"})
        by_id = {self.old[k]["table_id"]: k for k in gone if self.old[k].get("table_id") is not None}
        for k in new:
            match = by_id.pop(self.new[k].get("table_id"), None)
            if match is not None:
                self.alias[k] = match

    def _pair_by_rootpage(self) -> None:
        gone, new = self._candidates({"table"})
        by_page = {self.old[k]["rootpage"]: k for k in gone if self.old[k].get("rootpage")}
        for k in new:
            match = by_page.get(self.new[k].get("rootpage"))
            if match is not None and self._keeps_half_the_columns(match, k):
                self.alias[k] = by_page.pop(self.new[k]["rootpage"])

    def _pair_children(self) -> None:
        # Children of a renamed relation keep their own names.
        removed, added = self.unmatched()
        by_parent_local = {(self.old[k]["parent"], self.old[k]["type"], self.old[k]["local"]): k
                           for k in sorted(removed)}
        for k in sorted(added):
            obj = self.new[k]
            parent = self.old_key(obj["parent"]) if obj["parent"] else None
            match = by_parent_local.pop((parent, obj["type"], obj["local"]), None)
            if match is not None:
                self.alias[k] = match

    def _pair_columns(self) -> None:
        # Renamed columns: same table, same position, same definition. A renamed last column
        # looks exactly like a dropped one plus a new one appended; the drop is the safer
        # reading (it is the louder one), so only a column followed by others counts.
        gone, new = self._candidates({"column"})
        last_old, last_new = self._last_positions(self.old), self._last_positions(self.new)
        by_shape = {(self.old[k]["parent"], self.old[k].get("position"), _fingerprint(self.old[k]["attrs"])): k
                    for k in gone if self.old[k].get("position") != last_old.get(self.old[k]["parent"])}
        for k in new:
            obj = self.new[k]
            if obj.get("position") == last_new.get(obj["parent"]):
                continue
            match = by_shape.pop((self.old_key(obj["parent"]), obj.get("position"), _fingerprint(obj["attrs"])), None)
            if match is not None:
                self.alias[k] = match

    def _pair_derived_names(self) -> None:
        # SQLite's foreign keys and UNIQUE constraints are named here by their columns and
        # target (it keeps no name of its own): renaming those renames the constraint.
        renames = _Renames()
        for new_key, old_key in self.alias.items():
            if self.new[new_key]["type"] in ("table", "column"):
                renames.add(self.old[old_key]["local"], self.new[new_key]["local"])
        gone, new = self._candidates({"constraint"})
        by_local = {(self.old[k]["parent"], self.old[k]["local"]): k for k in gone}
        for k in new:
            parent = self.old_key(self.new[k]["parent"]) if self.new[k]["parent"] else None
            match = by_local.pop((parent, renames.undo(self.new[k]["local"])), None)
            if match is not None:
                self.alias[k] = match

    def _pair_same_content(self) -> None:
        # An index, constraint or trigger under a new name with the same table and definition was
        # renamed (MySQL's RENAME INDEX): with names for keys its content is all that is left.
        # SQLite's definitions carry their own names, so this never pairs two of its objects.
        gone, new = self._candidates({"index", "constraint", "trigger"})
        by_content: dict[tuple, list[str]] = {}
        for k in gone:
            obj = self.old[k]
            by_content.setdefault((obj["type"], obj["parent"], _fingerprint(obj["attrs"])), []).append(k)
        for k in new:
            obj = self.new[k]
            parent = self.old_key(obj["parent"]) if obj["parent"] else None
            pool = by_content.get((obj["type"], parent, _fingerprint(obj["attrs"])))
            if pool:
                self.alias[k] = pool.pop(0)

    @staticmethod
    def _last_positions(snap: dict) -> dict[str, int]:
        last: dict[str, int] = {}
        for obj in snap.values():
            if obj["type"] == "column" and obj.get("position") is not None:
                last[obj["parent"]] = max(last.get(obj["parent"], -1), obj["position"])
        return last


def _ancestor_in(objects: dict, key: str, keys: set[str]) -> bool:
    seen = set()
    parent = objects[key]["parent"]
    while parent and parent not in seen:
        if parent in keys:
            return True
        seen.add(parent)
        parent = objects.get(parent, {}).get("parent")
    return False


def _table_facts(objects: dict, key: str) -> tuple[float | None, bool | None]:
    """Row estimate and RLS flag of the table an object belongs to (walking up the parents)."""
    seen = set()
    while key and key in objects and key not in seen:
        obj = objects[key]
        if obj["type"] in ("table", "materialized view", "foreign table"):
            return obj.get("rows"), obj["attrs"].get("rls_enabled")
        seen.add(key)
        key = obj["parent"]
    return None, None


_QUOTED_PLAIN_NAME = re.compile(r'"([a-z_][a-z0-9_$]*)"')
_REDUNDANT_ALIAS = re.compile(r"((?:[\w$]+\.)?([\w$]+)) AS \2(?![\w$])")


class _Renames:
    """Undoes renames inside text so a view naming a renamed table is not reported as changed."""

    def __init__(self):
        self.pairs: list[tuple[re.Pattern, str]] = []

    def add(self, old: str, new: str) -> None:
        if old != new:
            self.pairs.append((re.compile(r"(?<![\w$])" + re.escape(new) + r"(?![\w$])"), old))
            self.pairs.sort(key=lambda p: -len(p[0].pattern))

    def undo(self, value: Any) -> Any:
        if isinstance(value, str):
            for pattern, old in self.pairs:
                value = pattern.sub(old, value)
            # PostgreSQL keeps a view's output name by adding "AS old", SQLite quotes the new
            # name it writes into dependent definitions: neither changes what they do.
            value = _QUOTED_PLAIN_NAME.sub(r"\1", value)
            return _REDUNDANT_ALIAS.sub(r"\1", value)
        if isinstance(value, list):
            return [self.undo(v) for v in value]
        return value


def diff(old_snapshot: dict, new_snapshot: dict) -> list[dict]:
    # Every input form (a live read, a file, a stored version) is compared as its document.
    old_snapshot, new_snapshot = canonical(old_snapshot), canonical(new_snapshot)
    old, new = old_snapshot["objects"], new_snapshot["objects"]
    matcher = _Matcher(old, new, by_name=new_snapshot.get("identity") == "name")
    removed, added = matcher.unmatched()
    rater = rubric.rater_for(old_snapshot, new_snapshot)
    changes = _removals(old, new, matcher, removed, added, rater) + _additions(old, new, removed, added, rater)
    pairs = [(old[matcher.old_key(k)], new[k]) for k in new if k not in added]
    renames, renamed_pairs = _renames(pairs, matcher, names_derived=new_snapshot.get("identity") == "name")
    changes += _modifications(new, pairs, renames, renamed_pairs, rater)
    changes.sort(key=lambda c: (ORDER[c["action"]], c["object"], c["object_type"]))
    return changes


def _removals(old: dict, new: dict, matcher: _Matcher, removed: set, added: set,
              rater: rubric.Rater) -> list[dict]:
    # Attaching a partition makes its columns, indexes and constraints inherited copies of
    # the parent's, which a snapshot does not list; that is the attach, not removals.
    attached = {matcher.old_key(new[k]["parent"]) for k in added if new[k]["type"] == "partition"}
    changes = []
    for key in removed:
        if _ancestor_in(old, key, removed | attached):
            continue
        obj = old[key]
        rows, _ = _table_facts(old, obj["parent"])
        has_children = any(o["parent"] == key and o["type"] not in FOLLOWERS for o in old.values())
        verdict = rater.removed(obj, rows, has_children)
        changes.append(_record("removed", obj, verdict, {"before": _sorted(obj["attrs"])}))
    return changes


def _additions(old: dict, new: dict, removed: set, added: set, rater: rubric.Rater) -> list[dict]:
    # A detached partition's columns, indexes and constraints were inherited and hidden;
    # detaching makes them its own. They are part of the detach, not additions.
    detached = {old[k]["parent"] for k in removed if old[k]["type"] == "partition"}
    changes = []
    for key in added:
        if _ancestor_in(new, key, added | detached):
            continue
        obj = new[key]
        rows, rls = _table_facts(new, obj["parent"])
        verdict = rater.added(obj, rows, rls)
        changes.append(_record("added", obj, verdict, {"after": _sorted(obj["attrs"])}))
    return changes


def _renames(pairs: list[tuple[dict, dict]], matcher: _Matcher, *,
             names_derived: bool) -> tuple[_Renames, set[int]]:
    renames = _Renames()
    renamed_pairs = set()
    for i, (before, after) in enumerate(pairs):
        if names_derived and after["type"] == "constraint":
            continue  # its name is made of its columns: their rename is the change
        new_parent = matcher.old_key(after["parent"]) if after["parent"] else None
        moved = after["type"] in MOVABLE_TYPES and before["parent"] != new_parent
        if after["type"] not in NAME_FOLLOWERS and (before["local"] != after["local"] or moved):
            renames.add(before["name"], after["name"])
            renames.add(before["local"], after["local"])
            renamed_pairs.add(i)
    return renames, renamed_pairs


def _modifications(new: dict, pairs: list[tuple[dict, dict]], renames: _Renames,
                   renamed_pairs: set[int], rater: rubric.Rater) -> list[dict]:
    changes = []
    for i, (before, after) in enumerate(pairs):
        # An attribute that differs only by the renames above (a view naming a renamed column) has not changed.
        changed = [a for a in sorted(set(before["attrs"]) | set(after["attrs"]))
                   if before["attrs"].get(a) != after["attrs"].get(a)
                   and renames.undo(before["attrs"].get(a)) != renames.undo(after["attrs"].get(a))]
        if not changed and i not in renamed_pairs:
            continue
        if after["type"] in ("table", "materialized view", "foreign table"):
            rows = after.get("rows")
        else:
            rows, _ = _table_facts(new, after["parent"])
        verdicts = [rater.modified(before, after, a, rows) for a in changed]
        if i in renamed_pairs:
            verdicts.insert(0, rater.renamed(after))
        verdict = rubric.worst(verdicts)
        detail: dict[str, Any] = {"before": {a: before["attrs"].get(a) for a in changed},
                                  "after": {a: after["attrs"].get(a) for a in changed}}
        if len(verdicts) > 1:
            detail["reasons"] = [v.why for v in verdicts]
        record = _record("modified", after, verdict, detail)
        if i in renamed_pairs:
            record["renamed_from"] = before["name"]
        changes.append(record)
    return changes


def _sorted(attrs: dict) -> dict:
    # A file's attributes come back in sorted order, a live read's in catalogue order: print one.
    return dict(sorted(attrs.items()))


def _record(action: str, obj: dict, verdict: rubric.Verdict, detail: dict) -> dict:
    detail = dict(detail, why=verdict.why, category=verdict.category, rule=verdict.rule)
    if obj["type"] in FOLLOWERS:
        detail["on"] = obj["attrs"].get("on")
    return {"action": action, "object_type": obj["type"], "object": obj["name"], "risk": verdict.risk,
            "renamed_from": None, "detail": detail}


def summary_line(change: dict) -> str:
    """One human line per change, as `dbmon schema diff --format text` prints it."""
    sign = {"added": "+", "removed": "-", "modified": "~"}[change["action"]]
    name = change["object"]
    if change.get("renamed_from"):
        name = f"{change['renamed_from']} -> {name}"
    return f"{sign} [{change['risk']}] {change['object_type']} {name}: {change['detail'].get('why', '')}"
