"""Snapshot of a SQLite file: sqlite_master plus table_xinfo, index and foreign-key pragmas.

SQLite has no OIDs, so keys are names and the diff matches renames by content, helped by
each table's `rootpage`, which `ALTER TABLE ... RENAME TO` keeps. The file is
opened read-only; `sqlite_*` internals (sqlite_stat1 from ANALYZE, sqlite_sequence) are
left out, so ANALYZE and VACUUM change nothing here, and a 12-step table rebuild shows as
the column changes it made.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from monitor_app.schema.snapshot_format import SnapshotError, add_object, new_snapshot

SCHEMA = "main"
# Counting stops here: enough to tell empty from populated from large without a full scan.
ROW_COUNT_CAP = 1_000_001
GENERATED = {2: "virtual", 3: "stored"}


def path_from_dsn(dsn: str) -> Path:
    if dsn.startswith("sqlite:///"):
        return Path(dsn[len("sqlite:///"):])
    if dsn.startswith("sqlite://"):
        raise SnapshotError(f"invalid SQLite DSN {dsn!r}: use sqlite:///relative or sqlite:////absolute path",
                            permanent=True, field="dsn")
    return Path(dsn)


def connect(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"SQLite file {path} does not exist", permanent=True, field="dsn")
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=10)
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"cannot read SQLite file {path}: {exc}", permanent=True) from None
    return conn


def schema_version(path: str | Path) -> int:
    """The cheap trigger: SQLite bumps it on every schema change (and on VACUUM sometimes)."""
    conn = connect(path)
    try:
        return conn.execute("PRAGMA schema_version").fetchone()[0]
    finally:
        conn.close()


def _normalise(sql: str | None) -> str | None:
    return re.sub(r"\s+", " ", sql).strip() if sql else sql


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_checks(sql: str | None) -> list[str]:
    """CHECK clauses of a CREATE TABLE, with balanced parentheses, in order of appearance."""
    checks: list[str] = []
    if not sql:
        return checks
    for match in re.finditer(r"\bcheck\s*\(", sql, flags=re.IGNORECASE):
        depth, i = 0, match.end() - 1
        for j in range(i, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[j], 0)
            if depth == 0:
                checks.append(_normalise(sql[i + 1:j]))
                break
    return checks


def take_snapshot(path_or_dsn: str | Path) -> dict:
    path = path_from_dsn(str(path_or_dsn))
    conn = connect(path)
    try:
        return _read(conn, path)
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"reading schema of {path} failed: {exc}") from None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, path: Path) -> dict:
    conn.execute("BEGIN")  # one read transaction: a consistent view while others write
    snap = new_snapshot("sqlite", "name", str(path), sqlite3.sqlite_version)
    snap["schema_version"] = conn.execute("PRAGMA schema_version").fetchone()[0]
    master = conn.execute(
        "SELECT type, name, tbl_name, sql, rootpage FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    flags = {}
    try:
        for row in conn.execute("PRAGMA table_list"):
            flags[row[1]] = {"without_rowid": bool(row[4]), "strict": bool(row[5])}
    except sqlite3.OperationalError:  # table_list arrived in SQLite 3.37
        pass

    for kind, name, _, sql, rootpage in master:
        if kind == "table":
            _table(conn, snap, name, sql, flags.get(name, {}))
            snap["objects"][f"table:{name}"]["rootpage"] = rootpage  # for rename matching, not compared
        elif kind == "view":
            add_object(snap, f"view:{name}", "view", f"{SCHEMA}.{name}", name, None,
                       {"definition": _normalise(sql)})
    for kind, name, table, sql, _ in master:
        if kind == "index" and sql:
            _index(conn, snap, name, table, sql)
        elif kind == "trigger":
            parent = f"table:{table}" if f"table:{table}" in snap["objects"] else f"view:{table}"
            add_object(snap, f"trigger:{name}", "trigger", f"{SCHEMA}.{table}.{name}", name, parent,
                       {"definition": _normalise(sql)})
    return snap


def _table(conn: sqlite3.Connection, snap: dict, name: str, sql: str, flags: dict) -> None:
    if sql and sql.upper().startswith("CREATE VIRTUAL"):
        attrs = {"virtual": True, "definition": _normalise(sql)}
    else:
        attrs = dict(flags, checks=table_checks(sql))
    # The table name comes from the monitored file; _quote doubles embedded quotes, so it stays one identifier.
    rows = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {_quote(name)} LIMIT {ROW_COUNT_CAP})").fetchone()[0]  # nosec B608
    key = f"table:{name}"
    add_object(snap, key, "table", f"{SCHEMA}.{name}", name, None, attrs, rows=float(rows))
    for cid, col, type_, notnull, dflt, pk, hidden in conn.execute(f"PRAGMA table_xinfo({_quote(name)})"):
        if hidden == 1:  # a virtual table's hidden column
            continue
        col_attrs = {"type": type_ or None, "not_null": bool(notnull), "default": dflt,
                     "primary_key": pk or None, "generated": GENERATED.get(hidden)}
        add_object(snap, f"col:{name}/{col}", "column", f"{SCHEMA}.{name}.{col}", col, key, col_attrs)
        snap["objects"][f"col:{name}/{col}"]["position"] = cid  # for rename matching, not compared
    fks: dict[int, dict] = {}
    for fid, _seq, ref, frm, to, on_update, on_delete, match in conn.execute(
            f"PRAGMA foreign_key_list({_quote(name)})"):
        fk = fks.setdefault(fid, {"references": ref, "from": [], "to": [], "on_update": on_update,
                                  "on_delete": on_delete, "match": match})
        fk["from"].append(frm)
        fk["to"].append(to)
    for fk in fks.values():
        local = f"fk({','.join(fk['from'])})->{fk['references']}({','.join(str(t) for t in fk['to'])})"
        add_object(snap, f"con:{name}/{local}", "constraint", f"{SCHEMA}.{name}.{local}", local, key,
                   dict(fk, kind="foreign key"))
    for _, idx, _unique, origin, _partial in conn.execute(f"PRAGMA index_list({_quote(name)})"):
        if origin == "u":  # UNIQUE in the table definition: a constraint, not a separate index
            cols = [r[2] for r in conn.execute(f"PRAGMA index_info({_quote(idx)})")]
            local = f"unique({','.join(cols)})"
            add_object(snap, f"con:{name}/{local}", "constraint", f"{SCHEMA}.{name}.{local}", local, key,
                       {"kind": "unique", "columns": cols})


def _index(conn: sqlite3.Connection, snap: dict, name: str, table: str, sql: str) -> None:
    cols = [r[2] if r[2] is not None else "<expression>"
            for r in conn.execute(f"PRAGMA index_xinfo({_quote(name)})") if r[5]]
    attrs = {"definition": _normalise(sql), "unique": bool(re.match(r"\s*create\s+unique", sql, re.I)),
             "partial": bool(re.search(r"\bwhere\b", sql, re.I)), "columns": cols, "table": f"{SCHEMA}.{table}"}
    add_object(snap, f"idx:{name}", "index", f"{SCHEMA}.{name}", name, f"table:{table}", attrs)
