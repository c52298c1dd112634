"""Snapshot of one MySQL or MariaDB database (the DSN's) in the shared snapshot format.

Keys are names, not server ids: `table:orders`, `col:orders/email`, `idx:orders/PRIMARY`,
`con:orders/fk_user`, `partition:events/p2026`, `view:v`, `routine:procedure:p`, `trigger:t`,
`event:e`, `seq:s`, `user:'app'@'%'`, `acl:<key>` and the `database` itself. InnoDB gives each
table an id that RENAME keeps, but a table rebuild (ALGORITHM=COPY, or INPLACE with a rebuild:
ADD PRIMARY KEY, MODIFY ... NOT NULL, OPTIMIZE) gives it a new one, so an id cannot be the key:
every rebuild would read as drop + create. It is kept as the `table_id` hint instead, which the
diff uses to recognise a rename (ids are never reused); without the PROCESS privilege to read
it, renames are matched by content as on SQLite. Keys leave out the database name, so a
staging database and its production twin (`app_staging`, `app`) diff object by object; display
names include it.

Hints, never compared: `rows` (TABLE_ROWS, InnoDB's estimate, on tables and partitions),
`table_id`, and on columns `position`, `last` (the rubric's INSTANT ADD COLUMN rules) and
`volatile_default`. Snapshot-level `accounts` says whether account attributes and routine grants
were readable (see `mysql_grants`).

Bounds: the session is bounded as `mysql_connection` describes; a database with more than
`Limits.tables` tables and views, or more than `Limits.rows` rows in any one catalogue answer,
is refused with an error naming what overflowed; a routine body, view, trigger or event text
longer than `Limits.text` characters is kept as its head plus the length and SHA-256 of the whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pymysql

from monitor_app.schema import mysql_catalogue as cat
from monitor_app.schema.mysql_connection import (LOCK_ERRORS, TIMEOUT_ERRORS, connect, error_code, error_text,
                                                 is_mariadb, parse_dsn, quote_identifier)
from monitor_app.schema.mysql_grants import GrantReader
from monitor_app.schema.mysql_types import volatile_default
from monitor_app.schema.snapshot_format import SnapshotError, add_object, new_snapshot

TABLE_TYPES = {"BASE TABLE": "table", "SYSTEM VERSIONED": "table", "SEQUENCE": "sequence", "VIEW": "view"}


@dataclass(frozen=True)
class Limits:
    tables: int = 10_000       # tables, views and sequences
    rows: int = 200_000        # rows of any one catalogue query (columns, index parts, grants, ...)
    text: int = 256 * 1024     # characters kept of one definition or body


def take_snapshot(dsn_or_conn: Any, *, limits: Limits = Limits()) -> dict:
    """Snapshot through a `mysql://` / `mariadb://` DSN (connects and closes) or an open
    connection from `mysql_connection.connect` (whose database is the one read)."""
    if isinstance(dsn_or_conn, str):
        where = parse_dsn(dsn_or_conn).redacted()
        conn = connect(dsn_or_conn)
        try:
            return _take(conn, where, limits)
        finally:
            conn.close()
    return _take(dsn_or_conn, "the MySQL connection", limits)


def _take(conn, where: str, limits: Limits) -> dict:
    database = (conn.db or b"").decode("utf-8", "replace") if isinstance(conn.db, bytes) else str(conn.db or "")
    if not database:
        raise SnapshotError(f"{where}: the connection has no database selected", permanent=True)
    try:
        with conn.cursor() as cur:
            return _Reader(cur, database, limits, mariadb=is_mariadb(conn), version=server_version(conn)).read()
    except cat.TooManyObjects as exc:
        raise SnapshotError(f"{where}: database {database!r} has more than {exc.limit:,} {exc.kind}; "
                            f"a snapshot is bounded to that", permanent=True) from None
    except pymysql.MySQLError as exc:
        code = error_code(exc)
        if code in TIMEOUT_ERRORS:
            reason = "a catalogue query ran past the statement timeout"
        elif code in LOCK_ERRORS:
            reason = "a catalogue query waited too long for a metadata lock (DDL in progress?)"
        else:
            reason = "a catalogue query failed"
        raise SnapshotError(f"{where}: {reason}: {error_text(exc)}") from None


def server_version(conn) -> str:
    """The version the server announced; MariaDB prefixes `5.5.5-` for old clients' sake."""
    return conn.get_server_info().removeprefix("5.5.5-")


def bounded_text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    value = str(value)
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()
    return f"{value[:limit]}... [{len(value):,} characters, sha256 {digest}]"


class _Reader:
    """One method per object kind, in dependency order: children hang under their table."""

    def __init__(self, cur, database: str, limits: Limits, *, mariadb: bool, version: str):
        self.cur, self.db, self.limits, self.mariadb = cur, database, limits, mariadb
        self.snap = new_snapshot("mariadb" if mariadb else "mysql", "name", database, version)
        self.objects = self.snap["objects"]
        self.caps = cat.capabilities(cur)

    def read(self) -> dict:
        schema = cat.read_schema(self.cur, self.caps, self.db)
        if schema is None:
            raise SnapshotError(f"database {self.db!r} does not exist or is not visible", permanent=True)
        add_object(self.snap, "database", "database", self.db, self.db, None,
                   {"charset": schema["DEFAULT_CHARACTER_SET_NAME"], "collation": schema["DEFAULT_COLLATION_NAME"],
                    "comment": schema["SCHEMA_COMMENT"] or None})
        partitioned = self._tables()
        self._columns()
        self._indexes()
        self._foreign_keys()
        self._checks()
        if partitioned:
            self._partitions(partitioned)
        self._views()
        self._routines()
        self._triggers()
        self._events()
        GrantReader(self.cur, self.snap, self.db, self.limits.rows, mariadb=self.mariadb).read()
        return self.snap

    def _rows(self, kind: str, sql: str, *args: Any) -> list[dict]:
        return cat.bounded(self.cur, kind, sql, (self.db, *args), self.limits.rows)

    def _text(self, value: Any) -> str | None:
        return bounded_text(value, self.limits.text)

    def _name(self, *parts: str) -> str:
        return ".".join((self.db, *parts))

    def _tables(self) -> list[str]:
        found = cat.bounded(self.cur, "tables and views", cat.Q_TABLES, (self.db,), self.limits.tables)
        tables = [r for r in found if TABLE_TYPES.get(r["TABLE_TYPE"]) == "table"]
        ids = cat.innodb_table_ids(self.cur, self.caps, self.db, {r["TABLE_NAME"] for r in tables}, self.limits.tables)
        partitioned = []
        for r in found:
            kind, name = TABLE_TYPES.get(r["TABLE_TYPE"]), r["TABLE_NAME"]
            if kind == "sequence":
                definition = cat.sequence_definition(self.cur, self.db, name)
                add_object(self.snap, f"seq:{name}", "sequence", self._name(name), name, "database",
                           {"definition": definition})
            elif kind == "table":
                options = sorted(o for o in (r["CREATE_OPTIONS"] or "").split()
                                 if o != "partitioned" and not o.lower().startswith("row_format="))
                if "partitioned" in (r["CREATE_OPTIONS"] or "").split():
                    partitioned.append(name)
                collation = r["TABLE_COLLATION"]
                attrs = {"engine": r["ENGINE"], "row_format": r["ROW_FORMAT"],
                         "charset": collation.split("_", 1)[0] if collation else None, "collation": collation,
                         "options": options, "comment": r["TABLE_COMMENT"] or None,
                         "system_versioned": r["TABLE_TYPE"] == "SYSTEM VERSIONED", "partitioning": None}
                key = f"table:{name}"
                add_object(self.snap, key, "table", self._name(name), name, "database", attrs,
                           rows=float(r["TABLE_ROWS"] or 0))
                if name in ids:
                    self.objects[key]["table_id"] = ids[name]
        return partitioned

    def _columns(self) -> None:
        found = self._rows("columns", cat.Q_COLUMNS)
        last: dict[str, int] = {}
        for r in found:
            last[r["TABLE_NAME"]] = max(last.get(r["TABLE_NAME"], 0), r["ORDINAL_POSITION"])
        for r in found:
            table, name = r["TABLE_NAME"], r["COLUMN_NAME"]
            if f"table:{table}" not in self.objects:
                continue  # a view's columns: its definition says what they are
            attrs = cat.column_attrs(r, mariadb=self.mariadb)
            key = f"col:{table}/{name}"
            add_object(self.snap, key, "column", self._name(table, name), name, f"table:{table}", attrs)
            self.objects[key].update(position=r["ORDINAL_POSITION"], last=r["ORDINAL_POSITION"] == last[table],
                                     volatile_default=volatile_default(attrs["default"]))

    def _indexes(self) -> None:
        indexes: dict[tuple[str, str], dict] = {}
        for r in self._rows("index columns", cat.statistics_query(self.caps)):
            table, name = r["TABLE_NAME"], r["INDEX_NAME"]
            if f"table:{table}" not in self.objects:
                continue
            index = indexes.setdefault((table, name), {
                "columns": [], "unique": not r["NON_UNIQUE"], "primary": name == "PRIMARY",
                "kind": r["INDEX_TYPE"], "invisible": bool(r["HIDDEN"]), "comment": r["INDEX_COMMENT"] or None})
            part = r["COLUMN_NAME"] if r["COLUMN_NAME"] is not None else f"({r['EXPRESSION']})"
            if r["SUB_PART"]:
                part += f"({r['SUB_PART']})"  # a prefix index: only the first N characters
            if r["COLLATION"] == "D":
                part += " DESC"
            index["columns"].append(part)
        for (table, name), attrs in indexes.items():
            add_object(self.snap, f"idx:{table}/{name}", "index", self._name(table, name), name, f"table:{table}",
                       attrs)

    def _foreign_keys(self) -> None:
        keys: dict[tuple[str, str], dict] = {}
        for r in self._rows("foreign key columns", cat.Q_FOREIGN_KEYS, self.db):
            fk = keys.setdefault((r["TABLE_NAME"], r["CONSTRAINT_NAME"]), {
                "kind": "foreign key", "columns": [], "references": f"{r['REFERENCED_TABLE_SCHEMA']}."
                f"{r['REFERENCED_TABLE_NAME']}", "referenced_columns": [], "on_update": r["UPDATE_RULE"],
                "on_delete": r["DELETE_RULE"]})
            fk["columns"].append(r["COLUMN_NAME"])
            fk["referenced_columns"].append(r["REFERENCED_COLUMN_NAME"])
        for (table, name), attrs in keys.items():
            self._constraint(table, name, attrs)

    def _checks(self) -> None:
        for r in cat.read_checks(self.cur, self.caps, self.db, self.limits.rows):
            self._constraint(r["TABLE_NAME"], r["CONSTRAINT_NAME"],
                             {"kind": "check", "clause": r["CHECK_CLAUSE"], "enforced": r["ENFORCED"] != "NO"})

    def _constraint(self, table: str, name: str, attrs: dict) -> None:
        if f"table:{table}" in self.objects:
            add_object(self.snap, f"con:{table}/{name}", "constraint", self._name(table, name), name,
                       f"table:{table}", attrs)

    def _partitions(self, tables: list[str]) -> None:
        parts: dict[tuple[str, str], dict] = {}
        for r in self._rows("partitions", cat.Q_PARTITIONS, tuple(tables)):
            table = self.objects.get(f"table:{r['TABLE_NAME']}")
            if table is None:
                continue
            method = r["PARTITION_METHOD"] + (f" / {r['SUBPARTITION_METHOD']}" if r["SUBPARTITION_METHOD"] else "")
            expression = r["PARTITION_EXPRESSION"] + (
                f" / {r['SUBPARTITION_EXPRESSION']}" if r["SUBPARTITION_EXPRESSION"] else "")
            table["attrs"]["partitioning"] = f"{method} ({expression})"
            part = parts.setdefault((r["TABLE_NAME"], r["PARTITION_NAME"]), {
                "attrs": {"method": r["PARTITION_METHOD"], "bound": r["PARTITION_DESCRIPTION"],
                          "subpartitions": [], "comment": r["PARTITION_COMMENT"] or None}, "rows": 0.0})
            if r["SUBPARTITION_NAME"]:
                part["attrs"]["subpartitions"].append(r["SUBPARTITION_NAME"])
            part["rows"] += float(r["TABLE_ROWS"] or 0)
        for (table, name), part in parts.items():
            add_object(self.snap, f"partition:{table}/{name}", "partition", self._name(table, name), name,
                       f"table:{table}", part["attrs"], rows=part["rows"])

    def _views(self) -> None:
        qualifier = quote_identifier(self.db) + "."
        for r in cat.read_views(self.cur, self.caps, self.db, self.limits.tables):
            # The server qualifies every name with the database: left out, a view reads the same in
            # a twin database, and no differently here.
            definition = (r["VIEW_DEFINITION"] or "").replace(qualifier, "")
            add_object(self.snap, f"view:{r['TABLE_NAME']}", "view", self._name(r["TABLE_NAME"]), r["TABLE_NAME"],
                       "database", {"definition": self._text(definition), "check_option": r["CHECK_OPTION"],
                                    "security": r["SECURITY_TYPE"], "definer": r["DEFINER"],
                                    "algorithm": r["ALGORITHM"]})

    def _routines(self) -> None:
        params: dict[tuple[str, str], list[str]] = {}
        for r in self._rows("routine parameters", cat.Q_PARAMETERS):
            mode = f"{r['PARAMETER_MODE']} " if r["PARAMETER_MODE"] else ""
            params.setdefault((r["ROUTINE_TYPE"], r["SPECIFIC_NAME"]), []).append(
                f"{mode}{r['PARAMETER_NAME']} {r['DTD_IDENTIFIER']}")
        for r in self._rows("routines", cat.Q_ROUTINES):
            kind, name = r["ROUTINE_TYPE"].lower(), r["ROUTINE_NAME"]
            attrs = {"parameters": params.get((r["ROUTINE_TYPE"], name), []), "returns": r["DTD_IDENTIFIER"],
                     "body": self._text(r["ROUTINE_DEFINITION"]), "deterministic": r["IS_DETERMINISTIC"] == "YES",
                     "data_access": r["SQL_DATA_ACCESS"], "security": r["SECURITY_TYPE"], "definer": r["DEFINER"],
                     "sql_mode": r["SQL_MODE"], "comment": r["ROUTINE_COMMENT"] or None}
            add_object(self.snap, f"routine:{kind}:{name}", kind, self._name(name), name, "database", attrs)

    def _triggers(self) -> None:
        for r in self._rows("triggers", cat.Q_TRIGGERS):
            table = r["EVENT_OBJECT_TABLE"]
            if f"table:{table}" not in self.objects:
                continue
            attrs = {"timing": r["ACTION_TIMING"], "event": r["EVENT_MANIPULATION"], "order": r["ACTION_ORDER"],
                     "statement": self._text(r["ACTION_STATEMENT"]), "definer": r["DEFINER"], "sql_mode": r["SQL_MODE"]}
            add_object(self.snap, f"trigger:{r['TRIGGER_NAME']}", "trigger", self._name(table, r["TRIGGER_NAME"]),
                       r["TRIGGER_NAME"], f"table:{table}", attrs)

    def _events(self) -> None:
        for r in self._rows("events", cat.Q_EVENTS):
            every = f"{r['INTERVAL_VALUE']} {r['INTERVAL_FIELD']}" if r["INTERVAL_VALUE"] else None
            attrs = {"definition": self._text(r["EVENT_DEFINITION"]), "type": r["EVENT_TYPE"],
                     "execute_at": _when(r["EXECUTE_AT"]), "every": every, "starts": _when(r["STARTS"]),
                     "ends": _when(r["ENDS"]), "status": r["STATUS"], "on_completion": r["ON_COMPLETION"],
                     "definer": r["DEFINER"], "sql_mode": r["SQL_MODE"], "time_zone": r["TIME_ZONE"],
                     "comment": r["EVENT_COMMENT"] or None}
            add_object(self.snap, f"event:{r['EVENT_NAME']}", "event", self._name(r["EVENT_NAME"]), r["EVENT_NAME"],
                       "database", attrs)


def _when(value: Any) -> str | None:
    return None if value is None else str(value)
