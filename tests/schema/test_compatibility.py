"""What the application expects, from a snapshot, a SQL file or SQLAlchemy models, against the live schema."""

from __future__ import annotations

import json
import sqlite3

import pytest

from monitor_app.schema.compatibility import ExpectationError, check, load_expected
from monitor_app.schema.sqlite_snapshot import take_snapshot as sqlite_snapshot

APP_DDL = ("CREATE TABLE users (id bigint PRIMARY KEY, email varchar(200) NOT NULL, created_at timestamptz)",
           "CREATE INDEX users_email ON users (email)",
           "CREATE TABLE orders (id integer PRIMARY KEY, user_id bigint, total numeric(10,2))")


def kinds(found: list[dict]) -> set[tuple[str, str]]:
    return {(m["kind"], m["object"]) for m in found}


@pytest.mark.parametrize("source", ["sql", "snapshot", "metadata"])
def test_it_accepts_a_matching_schema_and_names_each_mismatch(pg, tmp_path, source):
    pg.run(*APP_DDL)
    if source == "sql":
        spec = tmp_path / "app.sql"
        spec.write_text(";\n".join(APP_DDL) + ";")
    elif source == "snapshot":
        spec = tmp_path / "app.json"
        spec.write_text(json.dumps(pg.snapshot()))
    else:
        spec = "tests.schema.expected_models:metadata"
    expected = load_expected(str(spec), "postgresql")
    assert check(expected, pg.snapshot()) == []

    pg.run("DROP INDEX users_email", "ALTER TABLE users ALTER COLUMN email TYPE varchar(50)",
           "ALTER TABLE users ALTER COLUMN created_at TYPE text", "ALTER TABLE orders DROP COLUMN total")
    found = check(expected, pg.snapshot())
    assert kinds(found) == {("missing_index", "public.users(email)"), ("narrower_type", "public.users.email"),
                            ("incompatible_type", "public.users.created_at"), ("missing_column", "public.orders.total")}
    severity = {m["kind"]: m["severity"] for m in found}
    assert severity == {"missing_index": "warning", "narrower_type": "warning", "incompatible_type": "critical",
                        "missing_column": "critical"}
    pg.run("DROP TABLE orders")
    assert ("missing_table", "public.orders") in kinds(check(expected, pg.snapshot()))


def test_it_checks_sqlite_by_type_family_only(tmp_path):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, created_at DATETIME);"
                       "CREATE INDEX users_email ON users (email);")
    conn.close()
    expected = load_expected("tests.schema.expected_models:metadata", "sqlite")
    assert kinds(check(expected, sqlite_snapshot(db))) == {("missing_table", "main.orders")}


def test_it_rejects_an_unusable_expectation_naming_it(tmp_path):
    with pytest.raises(ExpectationError, match="cannot import"):
        load_expected("tests.schema.no_such_module:metadata", "postgresql")
    with pytest.raises(ExpectationError, match="not a SQLAlchemy MetaData"):
        load_expected("tests.schema.expected_models:users", "postgresql")
    broken = tmp_path / "broken.sql"
    broken.write_text("CREATE TABLE (((")
    with pytest.raises(ExpectationError, match="does not parse"):
        load_expected(str(broken), "postgresql")
    with pytest.raises(ExpectationError, match="give a .json snapshot"):
        load_expected("schema.txt", "postgresql")
