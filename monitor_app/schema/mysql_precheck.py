"""The cheap "did the schema change?" marker for a MySQL or MariaDB database, read before paying
for a full snapshot (as `precheck.postgres_marker` is for PostgreSQL): `mysql_marker(conn)` on a
connection from `mysql_connection.connect`, `mysql_marker_for_dsn(dsn)` connecting itself.

One statement, one round trip: per catalogue kind, a row count plus the sum and the XOR of CRC32
over each row's definition columns, for the connection's database. Sum and XOR are order-free, so
the server needs no sort and no GROUP_CONCAT (whose length cap would silently cut the input).
The client hashes the parts into one SHA-256 hex digest. A moved digest only means "take a
snapshot": the diff of contents decides whether anything is reported.

What goes in: the database's default character set and collation; per table its name, type,
engine, CREATE_TIME, collation, row format, create options and comment (never TABLE_ROWS,
UPDATE_TIME, AUTO_INCREMENT or data sizes, which move with writes: UPDATE_TIME is set by DML);
views (a checksum of the definition, not its length, which an edit can keep; security, definer,
algorithm); routines (CREATED, LAST_ALTERED, body checksum, result type, characteristics,
definer); triggers (CREATED, statement checksum, timing, event, order); events (schedule, status,
definition checksum, definer); the grants information_schema shows (global, database with
wildcard patterns, table, column); and the structure inside tables: columns (name, position,
type, nullability, default, extra, character set, collation, comment, generation expression),
index parts (uniqueness, prefix, order, type, visibility), foreign keys and their rules, CHECK
clauses, partitions.

The structure costs most: MariaDB opens every table once per information_schema table read, about
1.5 to 3 ms each per 200 tables. On MariaDB every ALTER of an InnoDB table rewrites its .frm,
which moves its CREATE_TIME (tests/schema/test_mysql_precheck.py makes each kind of ALTER), so
there the structure is hashed only when the database holds a table of another engine, whose
metadata-only ALTERs (a default, a rename, index visibility, dropping a CHECK) leave CREATE_TIME
alone; IF evaluates only the branch it takes. MySQL 8 keeps CREATE_TIME across ALTERs that
rebuild nothing but answers information_schema from its data dictionary cheaply: the structure is
always hashed there. CREATE_TIME and LAST_ALTERED have one-second resolution: an ALTER in the same
second as the table's previous one leaves them equal. So while the newest of them is this second
or the last, the server's clock to the microsecond is part of the digest: every pre-check in that
window says "moved" and snapshots, so a second ALTER in the same second (or one between two checks
in it) is never hidden behind an equal marker. Cost: checks in the second or two after DDL snapshot.

What it can miss: (1) account attributes (lock, password expiry, authentication plugin, TLS
requirement, limits) and routine-level grants, which live only in the mysql schema; pass
`accounts=True` to hash them too (needs SELECT on mysql.global_priv or mysql.user, and
mysql.procs_priv; the snapshot's `accounts` field says whether they were readable; it hashes every
account of the server, so it also moves when an account elsewhere changes). Without it
such a change is reported by the next snapshot taken for any other reason: schedule a full
snapshot now and then (or pass `accounts=True`) where account changes matter. (2) ALTER SEQUENCE
on MariaDB: a sequence's parameters are in no information_schema table (10.11), and it leaves
CREATE_TIME alone; the same periodic snapshot covers it. (3) Grants an unprivileged monitoring
account cannot see: information_schema shows it only its own. (4) CRC32 collisions: different
catalogues with equal counts, sums and XORs in every kind.

INSERT, UPDATE, DELETE, ANALYZE TABLE and FLUSH TABLES move nothing here (tested). A rebuild
(OPTIMIZE, ALTER ... FORCE) moves CREATE_TIME; the snapshot then finds nothing to report.
"""

from __future__ import annotations

import hashlib

import pymysql

from monitor_app.schema.mysql_connection import connect, error_text, is_mariadb, parse_dsn, rows
from monitor_app.schema.snapshot_format import SnapshotError


def _aggregate(name: str, columns: tuple[str, ...], stamp: str | None = None) -> str:
    """Count, sum and XOR of CRC32 over `columns` of each row. With `stamp`, a timestamp column of
    one-second resolution: while its newest value is this second or the last, the server's clock
    (to the microsecond) is added, so every pre-check in that window moves (see the module docstring)."""
    row = "CONCAT_WS('|', " + ", ".join(f"IFNULL({c}, '~')" for c in columns) + ")"
    recent = f", IF(MAX({stamp}) >= NOW() - INTERVAL 1 SECOND, UNIX_TIMESTAMP(NOW(6)), '')" if stamp else ""
    return (f"CONCAT_WS(':', '{name}', COUNT(*), IFNULL(SUM(CRC32({row})), 0), "
            f"IFNULL(BIT_XOR(CRC32(CONCAT('#', {row}))), 0){recent})")


def _part(name: str, source: str, columns: tuple[str, ...], where: str, *, stamp: str | None = None) -> str:
    return f"(SELECT {_aggregate(name, columns, stamp)} FROM information_schema.{source} WHERE {where})"  # nosec B608 - module constants only


DB = "%(db)s"
TABLE_COLUMNS = ("TABLE_NAME", "TABLE_TYPE", "ENGINE", "CREATE_TIME", "TABLE_COLLATION", "ROW_FORMAT", "CREATE_OPTIONS",
                 "TABLE_COMMENT")


def _definition_parts(mariadb: bool) -> list[str]:
    """What no ALTER TABLE changes: the database, views, routines, triggers, events, grants."""
    view_columns = ("TABLE_NAME", "CRC32(VIEW_DEFINITION)", "CHECK_OPTION", "SECURITY_TYPE", "DEFINER") + (
        ("ALGORITHM",) if mariadb else ())
    return [
        _part("schema", "SCHEMATA", ("DEFAULT_CHARACTER_SET_NAME", "DEFAULT_COLLATION_NAME"), f"SCHEMA_NAME = {DB}"),
        _part("views", "VIEWS", view_columns, f"TABLE_SCHEMA = {DB}"),
        _part("routines", "ROUTINES", ("ROUTINE_TYPE", "ROUTINE_NAME", "CREATED", "LAST_ALTERED",
                                       "CRC32(ROUTINE_DEFINITION)", "DTD_IDENTIFIER", "SECURITY_TYPE", "DEFINER",
                                       "SQL_DATA_ACCESS", "IS_DETERMINISTIC", "ROUTINE_COMMENT"),
              f"ROUTINE_SCHEMA = {DB}", stamp="LAST_ALTERED"),
        _part("triggers", "TRIGGERS", ("TRIGGER_NAME", "EVENT_OBJECT_TABLE", "CREATED", "ACTION_ORDER",
                                       "ACTION_TIMING", "EVENT_MANIPULATION", "CRC32(ACTION_STATEMENT)"),
              f"TRIGGER_SCHEMA = {DB}"),
        _part("events", "EVENTS", ("EVENT_NAME", "LAST_ALTERED", "STATUS", "CRC32(EVENT_DEFINITION)", "EVENT_TYPE",
                                   "EXECUTE_AT", "INTERVAL_VALUE", "INTERVAL_FIELD", "STARTS", "ENDS", "ON_COMPLETION",
                                   "DEFINER", "EVENT_COMMENT"), f"EVENT_SCHEMA = {DB}", stamp="LAST_ALTERED"),
        # USAGE is "no privilege": every account has it, and a snapshot lists no account for it.
        _part("global_grants", "USER_PRIVILEGES", ("GRANTEE", "PRIVILEGE_TYPE", "IS_GRANTABLE"),
              "PRIVILEGE_TYPE <> 'USAGE' OR IS_GRANTABLE = 'YES'"),
        _part("schema_grants", "SCHEMA_PRIVILEGES", ("GRANTEE", "TABLE_SCHEMA", "PRIVILEGE_TYPE", "IS_GRANTABLE"),
              f"TABLE_SCHEMA = {DB} OR {DB} LIKE TABLE_SCHEMA"),
        _part("table_grants", "TABLE_PRIVILEGES", ("GRANTEE", "TABLE_NAME", "PRIVILEGE_TYPE", "IS_GRANTABLE"),
              f"TABLE_SCHEMA = {DB}"),
        _part("column_grants", "COLUMN_PRIVILEGES", ("GRANTEE", "TABLE_NAME", "COLUMN_NAME", "PRIVILEGE_TYPE",
                                                     "IS_GRANTABLE"), f"TABLE_SCHEMA = {DB}"),
    ]


def _structure_parts(mariadb: bool, version: tuple[int, ...]) -> list[str]:
    """What ALTER TABLE changes inside a table: columns, indexes, constraints, partitions."""
    hidden = "IGNORED" if mariadb and version >= (10, 6) else "IS_VISIBLE" if not mariadb and version >= (8,) else "''"
    parts = [
        _part("columns", "COLUMNS", ("TABLE_NAME", "COLUMN_NAME", "ORDINAL_POSITION", "COLUMN_TYPE", "IS_NULLABLE",
                                     "COLUMN_DEFAULT", "EXTRA", "CHARACTER_SET_NAME", "COLLATION_NAME",
                                     "COLUMN_COMMENT", "GENERATION_EXPRESSION"), f"TABLE_SCHEMA = {DB}"),
        _part("indexes", "STATISTICS", ("TABLE_NAME", "INDEX_NAME", "SEQ_IN_INDEX", "COLUMN_NAME", "NON_UNIQUE",
                                        "SUB_PART", "COLLATION", "INDEX_TYPE", "INDEX_COMMENT", hidden),
              f"TABLE_SCHEMA = {DB}"),
        _part("fk_rules", "REFERENTIAL_CONSTRAINTS", ("TABLE_NAME", "CONSTRAINT_NAME", "UNIQUE_CONSTRAINT_NAME",
                                                      "REFERENCED_TABLE_NAME", "UPDATE_RULE", "DELETE_RULE"),
              f"CONSTRAINT_SCHEMA = {DB}"),
        _part("key_columns", "KEY_COLUMN_USAGE", ("TABLE_NAME", "CONSTRAINT_NAME", "COLUMN_NAME", "ORDINAL_POSITION",
                                                  "REFERENCED_TABLE_NAME", "REFERENCED_COLUMN_NAME"),
              f"TABLE_SCHEMA = {DB}"),
        _part("partitions", "PARTITIONS", ("TABLE_NAME", "PARTITION_NAME", "SUBPARTITION_NAME", "PARTITION_METHOD",
                                           "PARTITION_EXPRESSION", "PARTITION_DESCRIPTION"),
              f"TABLE_SCHEMA = {DB} AND PARTITION_NAME IS NOT NULL"),
    ]
    if version >= ((10, 2) if mariadb else (8, 0, 16)):
        parts.append(_part("checks", "CHECK_CONSTRAINTS", ("CONSTRAINT_NAME", "CHECK_CLAUSE"),
                           f"CONSTRAINT_SCHEMA = {DB}"))
    return parts


def _account_parts(mariadb: bool) -> list[str]:
    # The account tables are in the mysql schema; the password hash is never among the columns.
    if mariadb:
        account = ("(SELECT CONCAT_WS(':', 'accounts', COUNT(*), IFNULL(SUM(CRC32(CONCAT_WS('|', User, Host, "
                   "IFNULL(JSON_VALUE(Priv, '$.plugin'), '~'), IFNULL(JSON_VALUE(Priv, '$.account_locked'), '~'), "
                   "IFNULL(JSON_VALUE(Priv, '$.password_last_changed') = '0', '~'), "
                   "IFNULL(JSON_VALUE(Priv, '$.ssl_type'), '~'), IFNULL(JSON_VALUE(Priv, '$.max_connections'), '~'), "
                   "IFNULL(JSON_VALUE(Priv, '$.max_user_connections'), '~')))), 0)) FROM mysql.global_priv)")
    else:
        account = ("(SELECT CONCAT_WS(':', 'accounts', COUNT(*), IFNULL(SUM(CRC32(CONCAT_WS('|', User, Host, plugin, "
                   "account_locked, password_expired, ssl_type, max_connections, max_user_connections))), 0)) "
                   "FROM mysql.user)")
    routines = ("(SELECT CONCAT_WS(':', 'routine_grants', COUNT(*), IFNULL(SUM(CRC32(CONCAT_WS('|', User, Host, "
                "Routine_name, Routine_type, Proc_priv))), 0)) FROM mysql.procs_priv WHERE Db = %(db)s)")
    return [account, routines]


def _version(conn) -> tuple[int, ...]:
    info = conn.get_server_info().removeprefix("5.5.5-")
    numbers = []
    for piece in info.split("-", 1)[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def marker_sql(conn, *, accounts: bool = False) -> str:
    """The one statement. On MariaDB the table structure is hashed only when the database holds a
    table of an engine other than InnoDB: for InnoDB tables every ALTER moves CREATE_TIME already."""
    mariadb, version = is_mariadb(conn), _version(conn)
    tail = _definition_parts(mariadb) + (_account_parts(mariadb) if accounts else [])
    if not mariadb:
        tables = _part("tables", "TABLES", TABLE_COLUMNS, f"TABLE_SCHEMA = {DB}", stamp="CREATE_TIME")
        parts = [tables, *_structure_parts(mariadb, version), *tail]
        return "SELECT " + ", ".join(f"{part} AS p{i}" for i, part in enumerate(parts))
    # IF evaluates the branch it takes only: an InnoDB-only database pays for none of the scans.
    structure = [f"IF(t.others > 0, {part}, '')" for part in _structure_parts(mariadb, version)]
    parts = ["t.tables", *structure, *tail]
    return ("SELECT " + ", ".join(f"{part} AS p{i}" for i, part in enumerate(parts)) +
            f" FROM (SELECT {_aggregate('tables', TABLE_COLUMNS, 'CREATE_TIME')} AS tables, "  # nosec B608 - constants
            "SUM(IFNULL(ENGINE, 'InnoDB') <> 'InnoDB') AS others "
            f"FROM information_schema.TABLES WHERE TABLE_SCHEMA = {DB}) AS t")


def marker_parts(conn, *, accounts: bool = False) -> list[str]:
    """The digest's inputs, one `kind:count:sum:xor[:clock]` string per catalogue kind (empty for a
    structure kind skipped on an InnoDB-only MariaDB database)."""
    database = conn.db.decode("utf-8", "replace") if isinstance(conn.db, bytes) else str(conn.db or "")
    if not database:
        raise SnapshotError("the MySQL connection has no database selected", permanent=True)
    try:
        with conn.cursor() as cur:
            found = rows(cur, marker_sql(conn, accounts=accounts), {"db": database})
    except pymysql.MySQLError as exc:
        raise SnapshotError(f"pre-check of {database!r} failed: {error_text(exc)}") from None
    return [str(v) for v in found[0].values()] if found else []


def mysql_marker(conn, *, accounts: bool = False) -> str:
    """The marker of the connection's database (as `mysql_connection.connect` opens it): a hex digest
    that moves with its schema and grants and not with its data."""
    return hashlib.sha256("\n".join(marker_parts(conn, accounts=accounts)).encode()).hexdigest()


def mysql_marker_for_dsn(dsn: str, *, accounts: bool = False) -> str:
    """Connect (bounded, read-only), read the marker, disconnect: as `precheck.sqlite_marker` takes a path."""
    conn = connect(parse_dsn(dsn), application_name="dbmon-precheck")
    try:
        return mysql_marker(conn, accounts=accounts)
    finally:
        conn.close()
