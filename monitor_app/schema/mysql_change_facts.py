"""What the MySQL rubric knows about one change: the generic facts (`change_facts.Change`) plus
the server that made it and the table it is on, which decide how InnoDB carries it out.

Nothing here rates a change; `mysql_rubric` is the table of rules over these facts. The version
thresholds below are the ones its docstring cites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from monitor_app.schema.change_facts import Change
from monitor_app.schema.mysql_types import type_shift

# Where ALTER TABLE ... ADD COLUMN became INSTANT: at the end first, then anywhere.
INSTANT_ADD_LAST = {"mysql": (8, 0, 12), "mariadb": (10, 3, 2)}
INSTANT_ADD_ANYWHERE = {"mysql": (8, 0, 29), "mariadb": (10, 4, 0)}
INSTANT_DROP = {"mysql": (8, 0, 29), "mariadb": (10, 4, 0)}
# MariaDB 10.4 converts utf8mb3 to utf8mb4 in place (the bytes are already valid utf8mb4).
INSTANT_UTF8MB4 = (10, 4, 0)
REDISTRIBUTING = ("HASH", "KEY", "LINEAR HASH", "LINEAR KEY")


@dataclass(frozen=True)
class Server:
    flavour: str  # "mysql" or "mariadb"
    version: tuple[int, int, int] | None  # None: not known, so read as the oldest

    @classmethod
    def of(cls, snapshot: dict) -> Server:
        flavour = "mariadb" if snapshot.get("engine") == "mariadb" else "mysql"
        m = re.match(r"(?:5\.5\.5-)?(\d+)\.(\d+)\.(\d+)", str(snapshot.get("server_version") or ""))
        return cls(flavour, (int(m[1]), int(m[2]), int(m[3])) if m else None)

    def at_least(self, thresholds: dict[str, tuple[int, int, int]]) -> bool:
        return self.version is not None and self.version >= thresholds[self.flavour]

    def __str__(self) -> str:
        name = "MariaDB" if self.flavour == "mariadb" else "MySQL"
        return f"{name} {'.'.join(map(str, self.version))}" if self.version else f"{name} (version unknown)"


def _grants(entries) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entry in entries or []:
        cut = entry.rfind("'") + 1  # `'user'@'host' PRIVILEGE`: the grantee ends at its last quote
        out.setdefault(entry[:cut], set()).add(entry[cut:].strip())
    return out


def _gain(before, after) -> dict[str, list[str]]:
    a, b = _grants(before), _grants(after)
    return {who: sorted(p - a.get(who, set())) for who, p in b.items() if p - a.get(who, set())}


def _who(gained: dict[str, list[str]]) -> str:
    return "; ".join(f"{who}: {', '.join(privileges)}" for who, privileges in sorted(gained.items()))


@dataclass
class MysqlChange(Change):
    """A change with the server that made it, the table it is on (in the snapshot that has it)
    and, for a modification, the whole object before."""

    server: Server = Server("mysql", None)
    table: dict | None = None
    table_children: tuple[dict, ...] = ()
    previous: dict | None = None

    # --- where the change happened ----------------------------------------------------------

    @property
    def table_name(self) -> str:
        return self.table["name"] if self.table else "?"

    @property
    def has_fulltext(self) -> bool:
        return any(o["type"] == "index" and o["attrs"].get("kind") == "FULLTEXT" for o in self.table_children)

    @property
    def row_format(self) -> str:
        return str((self.table or {}).get("attrs", {}).get("row_format") or "")

    # --- columns ----------------------------------------------------------------------------

    @property
    def computed_per_row(self) -> bool:
        """An added column whose value must be computed and written for every existing row."""
        return self.attrs.get("generated") == "stored" or bool(self.obj.get("volatile_default"))

    @property
    def instant_add_blocker(self) -> str | None:
        """Why this server cannot add the column INSTANT, or None when it can."""
        if not self.server.at_least(INSTANT_ADD_LAST):
            return f"{self.server} has no INSTANT ADD COLUMN"
        if not self.obj.get("last", True) and not self.server.at_least(INSTANT_ADD_ANYWHERE):
            return f"not the last column, and {self.server} adds INSTANT only at the end"
        if self.row_format.lower() == "compressed":
            return "ROW_FORMAT=COMPRESSED"
        if self.has_fulltext:
            return "the table has a FULLTEXT index"
        return None

    @property
    def drop_algorithm(self) -> str:
        if self.server.at_least(INSTANT_DROP) and self.row_format.lower() != "compressed":
            return "INSTANT"
        return "INPLACE with a table rebuild"

    @cached_property
    def type_shift(self) -> str:
        before_charset = (self.previous or {}).get("attrs", {}).get("charset")
        return type_shift(self.before, self.after, before_charset, self.attrs.get("charset"))

    @property
    def charset_change(self) -> tuple[str, str] | None:
        """(before, after) when this column's character set changed (its collation moves with it)."""
        before = str((self.previous or {}).get("attrs", {}).get("charset") or "")
        after = str(self.attrs.get("charset") or "")
        return (before, after) if before and after and before != after else None

    @property
    def utf8mb4_in_place(self) -> bool:
        """utf8mb3 -> utf8mb4 keeping the collation's kind (`_general_ci` stays `_general_ci`):
        MariaDB 10.4+ does it in place, the bytes being valid utf8mb4 already."""
        change = self.charset_change
        if not change or self.server.flavour != "mariadb" or not self.server.at_least(
                {"mariadb": INSTANT_UTF8MB4, "mysql": (99, 0, 0)}):
            return False
        kind_before = str((self.previous or {}).get("attrs", {}).get("collation") or "").partition("_")[2]
        kind_after = str(self.attrs.get("collation") or "").partition("_")[2]
        return change[0] in ("utf8", "utf8mb3") and change[1] == "utf8mb4" and kind_before == kind_after

    @property
    def default_phrase(self) -> str:
        return f"the default {self.attrs.get('default')}" if self.attrs.get("default") is not None else "NULL"

    # --- partitions ---------------------------------------------------------------------------

    @property
    def redistributes(self) -> bool:
        return str(self.attrs.get("method") or "").upper() in REDISTRIBUTING

    # --- privileges and accounts ----------------------------------------------------------------

    @property
    def _grant_lists(self) -> tuple[list | None, list | None]:
        field = "global_privileges" if self.kind == "user" else "grants"
        before: list | None
        after: list | None
        if self.action == "added":
            before, after = [], self.attrs.get(field)
        elif self.action == "removed":
            before, after = self.attrs.get(field), []
        else:
            before, after = self.before, self.after
        if self.kind == "user":  # an account's own list names no grantee: it is the account
            return [f"{self.obj['name']} {p}" for p in before or []], [f"{self.obj['name']} {p}" for p in after or []]
        return before, after

    @cached_property
    def granted(self) -> dict[str, list[str]]:
        before, after = self._grant_lists
        return _gain(before, after)

    @cached_property
    def revoked(self) -> dict[str, list[str]]:
        before, after = self._grant_lists
        return _gain(after, before)

    @property
    def granted_who(self) -> str:
        return _who(self.granted)

    @property
    def revoked_who(self) -> str:
        return _who(self.revoked)

    @property
    def grants_grant_option(self) -> bool:
        return any("GRANT OPTION" in privileges for privileges in self.granted.values())

    @property
    def global_privileges(self) -> str:
        return ", ".join(self.attrs.get("global_privileges") or []) or "none"
