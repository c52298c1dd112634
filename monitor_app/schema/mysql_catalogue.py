"""The catalogue queries behind a MySQL or MariaDB snapshot, one per object kind.

information_schema is the one source both servers share. Where they differ the column set is
chosen from what the server says it has (one query at the start, `capabilities`), not from
its version string, so forks and cloud builds that report odd versions still read right:
index visibility is `STATISTICS.IS_VISIBLE` on MySQL 8 and `STATISTICS.IGNORED` on MariaDB
10.6+; check constraints name their table in `CHECK_CONSTRAINTS` on MariaDB and only through
`TABLE_CONSTRAINTS` on MySQL; InnoDB's table ids are `INNODB_SYS_TABLES` (MariaDB) or
`INNODB_TABLES` (MySQL 8), readable with the PROCESS privilege only. A sequence's parameters
are only faithfully given by `SHOW CREATE SEQUENCE` (its table also holds the current value).

Every query filters on the one database and carries a LIMIT one above the snapshot's bound,
so a database past the bound is refused with a clear error instead of read in full.
`column_attrs` reads a COLUMNS row into one spelling for both servers (defaults differ most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pymysql

from monitor_app.schema.mysql_connection import ACCESS_ERRORS, error_code, quote_identifier, rows
from monitor_app.schema.mysql_types import normalise_type

# (information_schema table, column) pairs whose presence changes what is read.
OPTIONAL_COLUMNS = (("STATISTICS", "IGNORED"), ("STATISTICS", "IS_VISIBLE"), ("STATISTICS", "EXPRESSION"),
                    ("CHECK_CONSTRAINTS", "TABLE_NAME"), ("CHECK_CONSTRAINTS", "CHECK_CLAUSE"),
                    ("TABLE_CONSTRAINTS", "ENFORCED"), ("VIEWS", "ALGORITHM"), ("SCHEMATA", "SCHEMA_COMMENT"))
OPTIONAL_TABLES = ("INNODB_SYS_TABLES", "INNODB_TABLES")

# Composed from the two constant tuples above only (hence `nosec B608`).
Q_CAPABILITIES = (  # nosec B608
    "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME) AS what FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = 'information_schema' AND (TABLE_NAME, COLUMN_NAME) IN ("
    + ", ".join(f"('{t}', '{c}')" for t, c in OPTIONAL_COLUMNS) + ") "  # nosec B608
    "UNION ALL SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'information_schema' "
    "AND TABLE_NAME IN (" + ", ".join(f"'{t}'" for t in OPTIONAL_TABLES) + ")")

Q_TABLES = """SELECT TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_ROWS, TABLE_COLLATION, CREATE_OPTIONS,
       TABLE_COMMENT
FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME LIMIT %s"""

Q_COLUMNS = """SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, DATA_TYPE, COLUMN_TYPE,
       CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, COLUMN_COMMENT, GENERATION_EXPRESSION
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION LIMIT %s"""

Q_FOREIGN_KEYS = """SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA,
       k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE
FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.TABLE_SCHEMA = %s AND r.CONSTRAINT_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION LIMIT %s"""

Q_CHECKS_MARIADB = """SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE, 'YES' AS ENFORCED
FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s ORDER BY TABLE_NAME, CONSTRAINT_NAME LIMIT %s"""

Q_CHECKS_MYSQL = """SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE, {enforced} AS ENFORCED
FROM information_schema.CHECK_CONSTRAINTS cc JOIN information_schema.TABLE_CONSTRAINTS tc
  ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME
 AND tc.CONSTRAINT_TYPE = 'CHECK'
WHERE cc.CONSTRAINT_SCHEMA = %s AND tc.TABLE_SCHEMA = %s ORDER BY tc.TABLE_NAME, cc.CONSTRAINT_NAME LIMIT %s"""

Q_VIEWS = """SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE, DEFINER, {algorithm} AS ALGORITHM
FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME LIMIT %s"""

Q_ROUTINES = """SELECT ROUTINE_TYPE, ROUTINE_NAME, DTD_IDENTIFIER, ROUTINE_DEFINITION, IS_DETERMINISTIC,
       SQL_DATA_ACCESS, SECURITY_TYPE, DEFINER, SQL_MODE, ROUTINE_COMMENT
FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_TYPE, ROUTINE_NAME LIMIT %s"""

Q_PARAMETERS = """SELECT ROUTINE_TYPE, SPECIFIC_NAME, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER
FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = %s AND ORDINAL_POSITION > 0
ORDER BY ROUTINE_TYPE, SPECIFIC_NAME, ORDINAL_POSITION LIMIT %s"""

Q_TRIGGERS = """SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER,
       ACTION_STATEMENT, DEFINER, SQL_MODE
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s ORDER BY TRIGGER_NAME LIMIT %s"""

Q_EVENTS = """SELECT EVENT_NAME, EVENT_DEFINITION, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, STARTS,
       ENDS, STATUS, ON_COMPLETION, DEFINER, SQL_MODE, EVENT_COMMENT, TIME_ZONE
FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s ORDER BY EVENT_NAME LIMIT %s"""

# Only for tables that say they are partitioned: on MariaDB this table opens every table it lists.
Q_PARTITIONS = """SELECT TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, SUBPARTITION_METHOD,
       PARTITION_EXPRESSION, SUBPARTITION_EXPRESSION, PARTITION_DESCRIPTION, TABLE_ROWS, PARTITION_COMMENT
FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN %s AND PARTITION_NAME IS NOT NULL
ORDER BY TABLE_NAME, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION LIMIT %s"""

Q_SCHEMA = """SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME, {comment} AS SCHEMA_COMMENT
FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"""

Q_INNODB_IDS = "SELECT NAME, TABLE_ID FROM information_schema.{table} WHERE NAME LIKE %s LIMIT %s"


class TooManyObjects(Exception):
    def __init__(self, kind: str, limit: int):
        super().__init__(kind, limit)
        self.kind, self.limit = kind, limit


@dataclass
class Capabilities:
    present: set[str] = field(default_factory=set)

    def has(self, what: str) -> bool:
        return what in self.present


def capabilities(cur) -> Capabilities:
    return Capabilities({r["what"] for r in rows(cur, Q_CAPABILITIES)})


def bounded(cur, kind: str, sql: str, args: tuple, limit: int) -> list[dict]:
    """The rows of one query whose last placeholder is its LIMIT; more than `limit` is an error."""
    found = rows(cur, sql, args + (limit + 1,))
    if len(found) > limit:
        raise TooManyObjects(kind, limit)
    return found


def statistics_query(caps: Capabilities) -> str:
    hidden = ("IGNORED = 'YES'" if caps.has("STATISTICS.IGNORED")
              else "IS_VISIBLE = 'NO'" if caps.has("STATISTICS.IS_VISIBLE") else "FALSE")
    expression = "EXPRESSION" if caps.has("STATISTICS.EXPRESSION") else "NULL"
    return f"""SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, COLLATION, INDEX_TYPE,
       INDEX_COMMENT, {hidden} AS HIDDEN, {expression} AS EXPRESSION
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX LIMIT %s"""  # nosec B608


def read_checks(cur, caps: Capabilities, database: str, limit: int) -> list[dict]:
    if not caps.has("CHECK_CONSTRAINTS.CHECK_CLAUSE"):
        return []  # MySQL before 8.0.16 parses CHECK and ignores it
    if caps.has("CHECK_CONSTRAINTS.TABLE_NAME"):
        return bounded(cur, "check constraints", Q_CHECKS_MARIADB, (database,), limit)
    enforced = "tc.ENFORCED" if caps.has("TABLE_CONSTRAINTS.ENFORCED") else "'YES'"
    return bounded(cur, "check constraints", Q_CHECKS_MYSQL.format(enforced=enforced), (database, database), limit)


def read_views(cur, caps: Capabilities, database: str, limit: int) -> list[dict]:
    algorithm = "ALGORITHM" if caps.has("VIEWS.ALGORITHM") else "NULL"
    return bounded(cur, "views", Q_VIEWS.format(algorithm=algorithm), (database,), limit)


def read_schema(cur, caps: Capabilities, database: str) -> dict | None:
    comment = "SCHEMA_COMMENT" if caps.has("SCHEMATA.SCHEMA_COMMENT") else "''"
    found = rows(cur, Q_SCHEMA.format(comment=comment), (database,))
    return found[0] if found else None


def filename_encoded(name: str) -> str:
    """A name as InnoDB spells it in its dictionary (MySQL's filename encoding): ASCII letters,
    digits and `_` as they are, most else as @ and four hex digits. The server spells some letters
    otherwise (accented Latin ones, for one); such a table just gets no id hint."""
    return "".join(ch if (ch.isascii() and (ch.isalnum() or ch == "_")) else f"@{ord(ch):04x}" for ch in name)


def innodb_table_ids(cur, caps: Capabilities, database: str, table_names: set[str], limit: int) -> dict[str, int]:
    """InnoDB's id of each table, which RENAME keeps and nothing reuses; {} when not readable.

    A partitioned table's id is its first partition's (its partitions are InnoDB's tables)."""
    table = next((t for t in OPTIONAL_TABLES if caps.has(t)), None)
    if table is None:
        return {}
    encoded = {filename_encoded(name): name for name in table_names}
    prefix = filename_encoded(database) + "/"
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    try:
        found = rows(cur, Q_INNODB_IDS.format(table=table), (like, limit * 4))
    except pymysql.MySQLError as exc:
        if error_code(exc) in ACCESS_ERRORS:
            return {}  # needs PROCESS: without it renames are matched by content, as on SQLite
        raise
    ids: dict[str, int] = {}
    for r in found:
        base = r["NAME"][len(prefix):].split("#", 1)[0]  # `t#P#p0` (MariaDB) or `t#p#p0` (MySQL)
        name = encoded.get(base)
        if name is not None and r["NAME"].startswith(prefix):
            ids[name] = min(ids.get(name, r["TABLE_ID"]), r["TABLE_ID"])
    return ids


def sequence_definition(cur, database: str, name: str) -> str | None:
    """MariaDB's sequence parameters, without the current value its table also holds."""
    found = rows(cur, f"SHOW CREATE SEQUENCE {quote_identifier(database)}.{quote_identifier(name)}")
    if not found:
        return None
    definition = str(list(found[0].values())[1])
    # "CREATE SEQUENCE `s` start with ... nocycle ENGINE=InnoDB": the parameters only.
    _, found_start, parameters = definition.partition(" start with ")
    return (found_start.strip() + " " + parameters if found_start else definition).rsplit(" ENGINE=", 1)[0]


def column_attrs(r: dict, *, mariadb: bool) -> dict[str, Any]:
    extra = (r["EXTRA"] or "").lower()
    generated = "stored" if "stored generated" in extra or "persistent generated" in extra else \
        "virtual" if "virtual generated" in extra else None
    on_update = extra.split("on update ", 1)[1].strip() if "on update " in extra else None
    return {"type": normalise_type(r["COLUMN_TYPE"]), "not_null": r["IS_NULLABLE"] == "NO",
            "default": column_default(r, mariadb=mariadb, generated=generated is not None),
            "auto_increment": "auto_increment" in extra, "generated": generated,
            "expression": r["GENERATION_EXPRESSION"] or None if generated else None,
            "charset": r["CHARACTER_SET_NAME"], "collation": r["COLLATION_NAME"],
            "on_update": _canonical_call(on_update), "invisible": "invisible" in extra,
            "comment": r["COLUMN_COMMENT"] or None}


def column_default(r: dict, *, mariadb: bool, generated: bool) -> str | None:
    """One spelling for both servers: None for no default and DEFAULT NULL alike (a writer that
    omits the column gets NULL either way, or an error if it is NOT NULL), string literals
    quoted, calls lower-case with parentheses (`current_timestamp()`)."""
    value = r["COLUMN_DEFAULT"]
    if value is None or generated:
        return None
    if mariadb:  # MariaDB 10.2.7+ already quotes literals and says NULL for DEFAULT NULL
        return None if value == "NULL" else value
    if "default_generated" in (r["EXTRA"] or "").lower():
        return _canonical_call(value)
    if r["DATA_TYPE"] in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "date",
                          "datetime", "timestamp", "time", "year", "binary", "varbinary", "json"):
        return "'" + value.replace("'", "''") + "'"
    return value


def _canonical_call(expression: str | None) -> str | None:
    if expression is None:
        return None
    lowered = expression.strip().lower()
    if lowered.startswith("current_timestamp") and "(" not in lowered:
        return lowered + "()"
    return lowered if lowered.startswith("current_timestamp") else expression
