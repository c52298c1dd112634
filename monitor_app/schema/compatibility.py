"""Does the live schema still give the application what it expects?

The expectation comes from a snapshot file (`*.json`, e.g. taken from staging), a SQL file
(`*.sql`, the application's DDL, parsed with sqlglot) or a SQLAlchemy `MetaData` import
path (`package.module:metadata`, a declarative base works too). Only what an application
relies on is checked: tables (or views) exist, columns exist with a compatible type, and
the indexes it declares have an index with those leading columns.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from monitor_app.errors import DbmonError
from monitor_app.schema.risk import type_shape
from monitor_app.schema.snapshot_format import load_file

DEFAULT_SCHEMA = {"postgresql": "public", "sqlite": "main"}
RELATION_TYPES = ("table", "view", "materialized view", "foreign table")
SEVERITY = {"missing_table": "critical", "missing_column": "critical", "incompatible_type": "critical",
            "narrower_type": "warning", "missing_index": "warning"}


class ExpectationError(DbmonError):
    permanent = True


@dataclass
class ExpectedTable:
    columns: dict[str, str | None] = field(default_factory=dict)
    indexes: list[tuple[str, ...]] = field(default_factory=list)


@dataclass
class Expected:
    source: str
    tables: dict[str, ExpectedTable] = field(default_factory=dict)


def _qualify(name: str, engine: str) -> str:
    name = name.lower().replace('"', "")
    return name if "." in name else f"{DEFAULT_SCHEMA.get(engine, 'public')}.{name}"


def load_expected(spec: str, engine: str) -> Expected:
    """`spec` is a path to a .json snapshot or .sql file, or `module:attribute` of a MetaData."""
    path = Path(spec)
    if path.suffix.lower() == ".json":
        return from_snapshot(load_file(path), engine, source=spec)
    if path.suffix.lower() == ".sql":
        try:
            return from_sql(path.read_text(), engine, source=spec)
        except OSError as exc:
            raise ExpectationError(f"expected schema {spec}: cannot read ({exc.strerror})", field="expected") from None
    if ":" in spec:
        return from_metadata(_import(spec), engine, source=spec)
    raise ExpectationError(f"expected schema {spec!r}: give a .json snapshot, a .sql file or module:metadata",
                           field="expected")


def _import(spec: str):
    module_name, _, attr = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ExpectationError(f"expected schema {spec}: cannot import ({exc})", field="expected") from None
    # A declarative base class carries its MetaData; anything else must be one.
    return target.metadata if isinstance(target, type) and hasattr(target, "metadata") else target


def from_snapshot(snapshot: dict, engine: str, source: str = "snapshot") -> Expected:
    expected = Expected(source)
    objects = snapshot["objects"]
    for obj in objects.values():
        if obj["type"] in RELATION_TYPES:
            expected.tables[_qualify(obj["name"], engine)] = ExpectedTable()
    for obj in objects.values():
        parent = objects.get(obj["parent"] or "")
        if obj["type"] == "column" and parent and parent["type"] in RELATION_TYPES:
            expected.tables[_qualify(parent["name"], engine)].columns[obj["local"].lower()] = obj["attrs"].get("type")
        elif obj["type"] == "index":
            table = expected.tables.get(_qualify(obj["attrs"].get("table", ""), engine))
            if table is not None:
                table.indexes.append(tuple(index_columns(obj)))
    return expected


def from_sql(text: str, engine: str, source: str = "sql") -> Expected:
    import sqlglot
    from sqlglot import exp

    dialect = "postgres" if engine == "postgresql" else "sqlite"
    try:
        statements = sqlglot.parse(text, read=dialect)
    except sqlglot.errors.ParseError as exc:
        raise ExpectationError(f"expected schema {source}: SQL does not parse ({str(exc).splitlines()[0]})",
                               field="expected") from None
    expected = Expected(source)
    for st in statements:
        if not isinstance(st, exp.Create):
            continue
        kind = (st.args.get("kind") or "").upper()
        if kind in ("TABLE", "VIEW", "MATERIALIZED VIEW") and isinstance(st.this, (exp.Schema, exp.Table)):
            table_expr = st.this.this if isinstance(st.this, exp.Schema) else st.this
            table = expected.tables.setdefault(_qualify(_table_name(table_expr), engine), ExpectedTable())
            for item in st.this.expressions if isinstance(st.this, exp.Schema) else []:
                if isinstance(item, exp.ColumnDef):
                    kind_expr = item.args.get("kind")
                    table.columns[item.name.lower()] = kind_expr.sql(dialect) if kind_expr else None
                elif isinstance(item, exp.PrimaryKey):
                    table.indexes.append(tuple(c.name.lower() for c in item.expressions))
        elif kind == "INDEX" and isinstance(st.this, exp.Index):
            table_expr = st.this.args.get("table")
            params = st.this.args.get("params")
            if table_expr is None or params is None:
                continue
            table = expected.tables.setdefault(_qualify(_table_name(table_expr), engine), ExpectedTable())
            cols = [c.this if isinstance(c, exp.Ordered) else c for c in params.args.get("columns") or []]
            table.indexes.append(tuple(c.name.lower() if isinstance(c, exp.Column) else c.sql(dialect).lower()
                                       for c in cols))
    return expected


def _table_name(table) -> str:
    return f"{table.db}.{table.name}" if table.db else table.name


def from_metadata(metadata, engine: str, source: str = "metadata") -> Expected:
    from sqlalchemy import MetaData
    from sqlalchemy.dialects import postgresql, sqlite

    if not isinstance(metadata, MetaData):
        raise ExpectationError(f"expected schema {source}: not a SQLAlchemy MetaData or declarative base",
                               field="expected")
    dialect = postgresql.dialect() if engine == "postgresql" else sqlite.dialect()
    expected = Expected(source)
    for table in metadata.tables.values():
        name = f"{table.schema}.{table.name}" if table.schema else table.name
        spec = expected.tables.setdefault(_qualify(name, engine), ExpectedTable())
        for column in table.columns:
            try:
                spec.columns[column.name.lower()] = column.type.compile(dialect=dialect)
            except Exception:  # noqa: BLE001 - a type the dialect cannot render: check existence only
                spec.columns[column.name.lower()] = None
        if table.primary_key.columns:
            spec.indexes.append(tuple(c.name.lower() for c in table.primary_key.columns))
        for index in table.indexes:
            spec.indexes.append(tuple(c.name.lower() for c in index.columns))
    return expected


def index_columns(obj: dict) -> list[str]:
    """Leading columns of an index object of either engine's snapshot."""
    if obj["attrs"].get("columns") is not None:
        return [str(c).lower() for c in obj["attrs"]["columns"]]
    match = re.search(r"USING \w+ \(", obj["attrs"].get("definition") or "")
    if not match:
        return []
    text, depth, parts, start = obj["attrs"]["definition"], 1, [], match.end()
    for i in range(match.end(), len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if (text[i] == "," and depth == 1) or depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        if depth == 0:
            break
    return [p.split(" ")[0].strip('"').lower() for p in parts]


def check(expected: Expected, snapshot: dict) -> list[dict]:
    """Mismatches between what the application expects and the snapshot, each with a severity."""
    engine = snapshot["engine"]
    tables = _actual_tables(snapshot)
    found: list[dict] = []
    for name, want in sorted(expected.tables.items()):
        have = tables.get(name)
        if have is None:
            found.append(_mismatch("missing_table", name, f"table {name} does not exist"))
            continue
        if snapshot["objects"][have["key"]]["type"] in ("view", "materialized view"):
            continue  # a view's columns are not snapshotted: its existence is what can be checked
        found += _column_mismatches(name, want, have, engine)
        found += _index_mismatches(name, want, have)
    return found


def _actual_tables(snapshot: dict) -> dict[str, dict]:
    """Qualified name -> the snapshot key, column types and leading index columns of each relation."""
    engine, objects = snapshot["engine"], snapshot["objects"]
    tables: dict[str, dict] = {}
    for key, obj in objects.items():
        if obj["type"] in RELATION_TYPES:
            tables[_qualify(obj["name"], engine)] = {"key": key, "columns": {}, "indexes": []}
    by_key = {t["key"]: t for t in tables.values()}
    for obj in objects.values():
        if obj["type"] == "column" and obj["parent"] in by_key:
            by_key[obj["parent"]]["columns"][obj["local"].lower()] = obj["attrs"].get("type")
        elif obj["type"] == "index":
            table = tables.get(_qualify(obj["attrs"].get("table", ""), engine))
            if table is not None:
                table["indexes"].append(tuple(index_columns(obj)))
        elif obj["type"] == "constraint" and obj["attrs"].get("columns") and obj["parent"] in by_key:
            by_key[obj["parent"]]["indexes"].append(tuple(c.lower() for c in obj["attrs"]["columns"]))
    # SQLite keeps a primary key in the table itself (the rowid or an automatic index).
    for key, table in by_key.items():
        pk = sorted((o["attrs"]["primary_key"], o["local"].lower()) for o in objects.values()
                    if o["parent"] == key and o["type"] == "column" and o["attrs"].get("primary_key"))
        if pk:
            table["indexes"].append(tuple(name for _, name in pk))
    return tables


def _column_mismatches(name: str, want: ExpectedTable, have: dict, engine: str) -> list[dict]:
    found = []
    for column, want_type in want.columns.items():
        if column not in have["columns"]:
            found.append(_mismatch("missing_column", f"{name}.{column}", f"column {name}.{column} does not exist"))
            continue
        problem = _type_problem(want_type, have["columns"][column], engine)
        if problem:
            found.append(_mismatch(problem[0], f"{name}.{column}", problem[1],
                                   expected=want_type, actual=have["columns"][column]))
    return found


def _index_mismatches(name: str, want: ExpectedTable, have: dict) -> list[dict]:
    return [_mismatch("missing_index", f"{name}({', '.join(cols)})",
                      f"no index on {name} leads with ({', '.join(cols)})")
            for cols in want.indexes if cols and not any(idx[:len(cols)] == cols for idx in have["indexes"])]


def _type_problem(want: str | None, have: str | None, engine: str) -> tuple[str, str] | None:
    if not want or not have:
        return None
    (fam_w, width_w, scale_w), (fam_h, width_h, scale_h) = type_shape(want), type_shape(have)
    if fam_w != fam_h:
        return "incompatible_type", f"expected {want}, found {have}"
    if engine == "sqlite":  # SQLite does not enforce declared widths
        return None
    if width_h < width_w or scale_h < scale_w:
        return "narrower_type", f"expected {want}, found the narrower {have}"
    return None


def _mismatch(kind: str, obj: str, why: str, **extra) -> dict:
    return dict({"kind": kind, "object": obj, "severity": SEVERITY[kind], "why": why}, **extra)
