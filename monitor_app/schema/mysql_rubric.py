"""The risk rubric for MySQL and MariaDB: what breaks for applications, and how InnoDB carries the
change out, which on these servers is the difference between a metadata edit and hours of blocked
writes. The first rule whose condition holds rates the change (`mysql_change_facts` has the facts).

Algorithms, weakest lock first: INSTANT (metadata only), INPLACE without a rebuild (MariaDB's
NOCOPY; concurrent writes allowed), INPLACE with a table rebuild (concurrent writes allowed, but
the whole table is rewritten, with its I/O and replica lag), COPY (a new table is filled row by
row while writes wait; LOCK=SHARED at best). Every ALTER also takes an exclusive metadata lock at
its start and end, which queues behind open transactions and makes every query after it wait.
"Large" is a TABLE_ROWS estimate above 100,000 (unknown counts as large), "empty" an estimate of 0;
a rule's risk moves to its large / empty value accordingly.

Sources: [M] MySQL 8.0 Reference Manual, 17.12.1 "Online DDL Operations"
(dev.mysql.com/doc/refman/8.0/en/innodb-online-ddl-operations.html): INSTANT ADD COLUMN from
8.0.12 as the last column, anywhere and INSTANT DROP COLUMN from 8.0.29; column type changes
COPY only; VARCHAR extended INPLACE while its length prefix keeps its size (255 bytes);
NULL / NOT NULL, ROW_FORMAT, ADD PRIMARY KEY INPLACE with a rebuild; DROP PRIMARY KEY alone COPY;
ADD FOREIGN KEY COPY unless foreign_key_checks=0; CONVERT TO CHARACTER SET COPY; ENUM/SET
members appended INSTANT; secondary indexes INPLACE without a rebuild; FULLTEXT/SPATIAL
INPLACE without concurrent writes, the first FULLTEXT index rebuilding the table; index
visibility metadata only. [Mdb] MariaDB KB, "InnoDB Online DDL Operations with the INSTANT
Alter Algorithm" and "... INPLACE ..." (mariadb.com/kb): INSTANT ADD COLUMN from 10.3.2 as the
last column, anywhere plus INSTANT DROP COLUMN and reordering from 10.4, not with a hidden
FTS_DOC_ID (a FULLTEXT index) nor ROW_FORMAT=COMPRESSED; utf8mb3 -> utf8mb4 in place from 10.4.
[T] measured on MariaDB 10.11 with ALGORITHM=INSTANT/NOCOPY/INPLACE/COPY and LOCK=NONE;
tests/schema/test_mysql_rubric.py re-runs each claim against the test server.

| Rule | Risk | Algorithm and lock | Source |
| --- | --- | --- | --- |
| `add-column-not-null-no-default` | high | any; strict mode refuses every INSERT that omits it | M, T |
| `add-column-copy` | medium (high if large, low if empty) | COPY: STORED generated or per-row default (uuid(), rand()) | M, T |
| `add-column-auto-increment` | medium (high if large, low if empty) | INPLACE rebuild, writes blocked (LOCK=SHARED) | M, T |
| `add-column-instant` | low | INSTANT | M, Mdb, T |
| `add-column-rebuild` | low (medium if large) | INPLACE rebuild, writes continue | M, Mdb, T |
| `add-primary-key` | medium (high if large) | INPLACE rebuild of the clustered index | M, T |
| `add-unique-index` | medium | INPLACE, no rebuild, writes continue | M, T |
| `add-fulltext-or-spatial-index` | medium (high if large, low if empty) | INPLACE, writes blocked | M, T |
| `add-index-large` | medium | INPLACE, no rebuild; long, replicas lag | M, T |
| `add-index` | low | INPLACE, no rebuild, writes continue | M, T |
| `add-foreign-key` | medium (high if large, low if empty) | COPY (INPLACE only with foreign_key_checks=0) | M, T |
| `add-check` | medium (high if large, low if empty) | COPY, every row checked | T |
| `add-trigger` | medium | metadata; exclusive metadata lock on the table | M |
| `add-partition` | low | RANGE/LIST: a new empty partition | M |
| `add-partition-redistribute` | medium (high if large, low if empty) | HASH/KEY: rows redistributed, copy | M |
| `add-table` | low | none on other tables | |
| `add-view` | low | none | |
| `add-routine` | low | none | |
| `add-sequence` | low | none | |
| `add-event` | medium | none; runs on its schedule | |
| `add-account-global` | high | none; global privileges | |
| `add-account` | low | none | |
| `revoke` | high | ACL only | |
| `grant-with-grant-option` | high | ACL only | |
| `grant` | low | ACL only | |
| `drop-table` | critical | data gone | |
| `drop-column` | critical | INSTANT (MySQL 8.0.29+, MariaDB 10.4+) else INPLACE rebuild | M, Mdb, T |
| `drop-partition` | critical | RANGE/LIST: the partition's rows deleted | M |
| `drop-partition-redistribute` | medium (high if large, low if empty) | HASH/KEY COALESCE: rows copied | M |
| `drop-primary-key` | high | COPY | M, T |
| `drop-unique-index` | medium | INPLACE, metadata only | M, T |
| `drop-index` | medium | INPLACE, metadata only | M, T |
| `drop-constraint` | medium | INPLACE, metadata only | M, Mdb |
| `drop-trigger` | medium | metadata | |
| `drop-view` | high | none | |
| `drop-routine` | high | none | |
| `drop-sequence` | high | none | |
| `drop-event` | medium | none | |
| `drop-account` | high | none | |
| `rename-table` | high | INSTANT | M, T |
| `rename-column` | high | INSTANT | M, T |
| `rename-view` | high | metadata | |
| `rename-database` | low | none: two databases compared | |
| `rename-internal` | low | INSTANT | M, T |
| `type-narrowed` | high | COPY; strict mode aborts on a value that does not fit | M, T |
| `type-family` | high (medium if empty) | COPY; every value converted | M, T |
| `enum-appended` | low | INSTANT | M, T |
| `enum-changed` | high (medium if empty) | COPY | M, T |
| `varchar-extended-in-place` | low | INPLACE/INSTANT, metadata only | M, Mdb, T |
| `type-widened` | medium (high if large, low if empty) | COPY | M, T |
| `charset-utf8mb4-in-place` | low | INSTANT on MariaDB 10.4+ | Mdb, T |
| `charset-converted` | high (medium if empty) | COPY; every value converted | M, T |
| `collation-changed` | medium | NOCOPY for indexed columns (indexes rebuilt), else COPY | T |
| `set-not-null` | high (medium if empty) | INPLACE rebuild; fails on a NULL in strict mode | M, T |
| `drop-not-null` | low (medium if large) | INPLACE rebuild, writes continue | M, T |
| `default-added` | low | INSTANT | M, T |
| `default-dropped-not-null` | high | INSTANT | M, T |
| `default-changed` | medium | INSTANT | M, T |
| `auto-increment-changed` | medium (high if large, low if empty) | COPY | M |
| `generated-changed` | medium (high if large, low if empty) | COPY for STORED columns | M |
| `column-visibility` | medium | INSTANT | |
| `on-update-changed` | medium | metadata | |
| `comment` | low | INSTANT | T |
| `index-hidden` | medium | INSTANT, metadata only | M, T |
| `index-visible` | low | INSTANT, metadata only | M, T |
| `index-redefined` | medium | dropped and built again, INPLACE | M |
| `constraint-changed` | medium (high if large) | re-added: COPY, every row checked | M, T |
| `engine-changed` | high (medium if empty) | COPY | M |
| `partitioning-changed` | medium (high if large, low if empty) | COPY | M |
| `system-versioning` | medium (high if large, low if empty) | COPY | T |
| `table-options` | low (medium if large) | INPLACE rebuild | M, T |
| `table-default-charset-instant` | low | MariaDB: INSTANT, existing columns unchanged | T |
| `table-default-charset-rebuild` | low (medium if large) | MySQL: INPLACE rebuild when the encoding differs | M |
| `database-default-charset` | low | none; new tables only | |
| `security-definer` | high | none | |
| `definer-changed` | medium | none | |
| `view-changed` | medium | none | |
| `routine-changed` | medium | none | |
| `trigger-changed` | medium | exclusive metadata lock | |
| `event-changed` | medium | none | |
| `sequence-changed` | medium | none | |
| `account-global-revoked` | high | ACL only | |
| `account-global-granted` | high | ACL only | |
| `account-locked` | high | ACL only | |
| `account-changed` | medium | ACL only | |
| `partition-changed` | medium (high if large, low if empty) | REORGANIZE copies the rows involved | M |
| `other-added` | low | | |
| `other-dropped` | high | | |
| `other-changed` | medium | | |
"""

from __future__ import annotations

from monitor_app.schema.mysql_change_facts import MysqlChange, Server
from monitor_app.schema.mysql_rubric_rules import RULES, MysqlRule
from monitor_app.schema.risk import Rater, Verdict

__all__ = ["RULES", "MysqlRater", "MysqlRule"]
# Object types whose row estimate is their own (a partition's rows are what dropping it deletes).
_OWN_ROWS = ("table", "partition")


class MysqlRater(Rater):
    """Rates one diff's changes with the rules above, knowing the server and the tables."""

    rules = RULES

    def __init__(self, old_snapshot: dict, new_snapshot: dict):
        self.server = Server.of(new_snapshot)
        self.before, self.after = old_snapshot["objects"], new_snapshot["objects"]
        self._keys = {id(o): k for objects in (self.before, self.after) for k, o in objects.items()}
        self._children: dict[int, dict[str, list[dict]]] = {}

    def judge(self, change) -> Verdict:
        rule = next(r for r in self.rules if r.when(change))
        risk = rule.risk
        if isinstance(rule, MysqlRule) and rule.risk_if_empty and not change.populated:
            risk = rule.risk_if_empty
        elif rule.risk_if_large and change.large:
            risk = rule.risk_if_large
        return Verdict(risk, rule.category, rule.why.format(c=change), rule.id)

    def _change(self, action: str, obj: dict, objects: dict, **facts) -> MysqlChange:
        """The change with the table it is on (itself, for a table) and that table's children."""
        key: str | None = self._keys.get(id(obj))
        seen: set[str] = set()
        while key and key in objects and objects[key]["type"] != "table" and key not in seen:
            seen.add(key)
            key = objects[key]["parent"]
        if not key or key not in objects or objects[key]["type"] != "table":
            return MysqlChange(action, obj, server=self.server, **facts)
        children = tuple(self._children_of(objects).get(key, ()))
        return MysqlChange(action, obj, server=self.server, table=objects[key], table_children=children, **facts)

    def _children_of(self, objects: dict) -> dict[str, list[dict]]:
        if id(objects) not in self._children:
            by_parent: dict[str, list[dict]] = {}
            for o in objects.values():
                if o["parent"]:
                    by_parent.setdefault(o["parent"], []).append(o)
            self._children[id(objects)] = by_parent
        return self._children[id(objects)]

    def added(self, obj: dict, table_rows: float | None, table_rls: bool | None = None) -> Verdict:
        return self.judge(self._change("added", obj, self.after, rows=table_rows))

    def removed(self, obj: dict, table_rows: float | None, has_children: bool = False) -> Verdict:
        rows = obj.get("rows") if obj["type"] in _OWN_ROWS else table_rows
        return self.judge(self._change("removed", obj, self.before, rows=rows, has_children=has_children))

    def renamed(self, obj: dict) -> Verdict:
        return self.judge(self._change("renamed", obj, self.after))

    def modified(self, obj_before: dict, obj_after: dict, attr: str, table_rows: float | None) -> Verdict:
        return self.judge(self._change("modified", obj_after, self.after, rows=table_rows, attr=attr,
                                       before=obj_before["attrs"].get(attr), after=obj_after["attrs"].get(attr),
                                       previous=obj_before))
