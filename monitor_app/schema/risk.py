"""How dangerous one change is, with the reason: the rubric table (`rubric.py`) applied to
the facts of a change (`change_facts.py`).

Categories follow the ones migration linters use (squawk, strong_migrations):
destructive, backward-incompatible, data-dependent, locking/rewrite, additive; plus
behaviour (same data, different results) and security. docs/schema.md has the rubric table.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor_app.platform.vocabulary import RISKS
from monitor_app.schema.change_facts import LARGE_TABLE_ROWS, Change, type_shape
from monitor_app.schema.rubric import RUBRIC

__all__ = ["LARGE_TABLE_ROWS", "RISKS", "RISK_ORDER", "Rater", "Verdict", "added", "judge", "max_risk", "modified",
           "privilege_change", "rater_for", "removed", "renamed", "type_change", "type_shape", "worst"]

RISK_ORDER = {name: i for i, name in enumerate(RISKS)}
# Objects whose row estimate is their own; everything else takes its table's.
_OWN_ROWS = ("table", "materialized view", "foreign table")
# Engines whose changes the MySQL rubric rates (`mysql_rubric`): their locks and rewrites are their own.
MYSQL_ENGINES = ("mysql", "mariadb")


@dataclass(frozen=True)
class Verdict:
    risk: str
    category: str
    why: str
    rule: str = ""


def max_risk(risks) -> str | None:
    risks = list(risks)
    return max(risks, key=RISK_ORDER.__getitem__) if risks else None


def worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=lambda v: RISK_ORDER[v.risk])


def judge(change: Change) -> Verdict:
    """The first rubric row that applies (the last one always does)."""
    return DEFAULT.judge(change)


class Rater:
    """Rates the changes of one diff with one rubric: the PostgreSQL/SQLite table by default;
    MySQL and MariaDB bring their own rules and facts (`mysql_rubric`)."""

    rules = RUBRIC

    def judge(self, change: Change) -> Verdict:
        rule = next(r for r in self.rules if r.when(change))
        risk = rule.risk_if_large if rule.risk_if_large and change.large else rule.risk
        return Verdict(risk, rule.category, rule.why.format(c=change), rule.id)

    def added(self, obj: dict, table_rows: float | None, table_rls: bool | None = None) -> Verdict:
        return self.judge(Change("added", obj, rows=table_rows, rls=table_rls))

    def removed(self, obj: dict, table_rows: float | None, has_children: bool = False) -> Verdict:
        rows = obj.get("rows") if obj["type"] in _OWN_ROWS else table_rows
        return self.judge(Change("removed", obj, rows=rows, has_children=has_children))

    def renamed(self, obj: dict) -> Verdict:
        return self.judge(Change("renamed", obj))

    def modified(self, obj_before: dict, obj_after: dict, attr: str, table_rows: float | None) -> Verdict:
        return self.judge(Change("modified", obj_after, rows=table_rows, attr=attr,
                                 before=obj_before["attrs"].get(attr), after=obj_after["attrs"].get(attr)))


DEFAULT = Rater()


def rater_for(old_snapshot: dict, new_snapshot: dict) -> Rater:
    """The rater for a diff between these two snapshots, chosen by the engine of the newer."""
    if new_snapshot.get("engine") in MYSQL_ENGINES:
        from monitor_app.schema.mysql_rubric import MysqlRater  # imports this module

        return MysqlRater(old_snapshot, new_snapshot)
    return DEFAULT


def added(obj: dict, table_rows: float | None, table_rls: bool | None = None) -> Verdict:
    return DEFAULT.added(obj, table_rows, table_rls)


def removed(obj: dict, table_rows: float | None, has_children: bool = False) -> Verdict:
    return DEFAULT.removed(obj, table_rows, has_children)


def renamed(obj: dict) -> Verdict:
    return DEFAULT.renamed(obj)


def modified(obj_before: dict, obj_after: dict, attr: str, table_rows: float | None) -> Verdict:
    return DEFAULT.modified(obj_before, obj_after, attr, table_rows)


def type_change(before: str, after: str, rows: float | None) -> Verdict:
    column = {"type": "column", "attrs": {"type": after}}
    return judge(Change("modified", column, rows=rows, attr="type", before=before, after=after))


def privilege_change(before: list[str] | None, after: list[str] | None) -> Verdict:
    privilege = {"type": "privilege", "attrs": {"grants": after}}
    return judge(Change("modified", privilege, attr="grants", before=before, after=after))
