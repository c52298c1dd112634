"""SQLite files: snapshot by content, renames found without OIDs, rebuilds shown as what they did."""

from __future__ import annotations


import pytest

from monitor_app.schema.snapshot_format import SnapshotError
from monitor_app.schema.sqlite_snapshot import schema_version, take_snapshot
from tests.schema.conftest import SqliteFile, brief, one

SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, age INTEGER DEFAULT 0 CHECK (age >= 0));
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
                     total REAL, note TEXT);
CREATE INDEX orders_user ON orders (user_id);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email)) WHERE email <> '';
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
CREATE TRIGGER orders_touch AFTER INSERT ON orders BEGIN SELECT 1; END;
"""


@pytest.fixture()
def db(tmp_path):
    f = SqliteFile(tmp_path / "app.db")
    f.conn.executescript(SCHEMA)
    f.conn.executescript("INSERT INTO users (email) VALUES ('a@x'), ('b@x'); INSERT INTO orders (user_id, total) VALUES (1, 500);")
    yield f
    f.conn.close()


def test_it_captures_tables_columns_indexes_views_triggers_and_constraints(db):
    snap = take_snapshot(db.path)
    objs = {(o["type"], o["name"]): o for o in snap["objects"].values()}
    assert objs[("table", "main.users")]["rows"] == 2
    assert objs[("table", "main.users")]["attrs"]["checks"] == ["age >= 0"]
    email = objs[("column", "main.users.email")]["attrs"]
    assert (email["type"], email["not_null"]) == ("TEXT", True)
    assert objs[("column", "main.users.age")]["attrs"]["default"] == "0"
    assert objs[("column", "main.users.id")]["attrs"]["primary_key"] == 1
    assert objs[("constraint", "main.users.unique(email)")]["attrs"]["kind"] == "unique"
    fk = objs[("constraint", "main.orders.fk(user_id)->users(id)")]["attrs"]
    assert fk["on_delete"] == "CASCADE"
    idx = objs[("index", "main.users_email_lower")]["attrs"]
    assert idx["unique"] and idx["partial"]
    assert objs[("index", "main.orders_user")]["attrs"]["columns"] == ["user_id"]
    assert "total > 100" in objs[("view", "main.big_orders")]["attrs"]["definition"]
    assert objs[("trigger", "main.orders.orders_touch")]["parent"] == "table:orders"


@pytest.mark.parametrize("script", ["VACUUM", "ANALYZE", "ANALYZE; ANALYZE users", "REINDEX",
                                    "INSERT INTO users (email) VALUES ('c@x')",
                                    "BEGIN; DROP TABLE orders; ROLLBACK"])
def test_it_reports_nothing_for_operations_that_change_no_definition(db, script):
    assert db.changes(script) == []


def test_it_reports_added_removed_and_changed_objects(db):
    changes = db.changes("""
        ALTER TABLE orders ADD COLUMN shipped INTEGER;
        ALTER TABLE orders DROP COLUMN note;
        DROP INDEX orders_user;
        CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
        CREATE INDEX audit_what ON audit (what);
        DROP VIEW big_orders;
    """)
    assert brief(changes) == {("added", "column", "main.orders.shipped"), ("removed", "column", "main.orders.note"),
                              ("removed", "index", "main.orders_user"), ("added", "table", "main.audit"),
                              ("removed", "view", "main.big_orders")}
    assert one(changes, object="main.orders.note")["risk"] == "critical"


def test_it_finds_renames_by_content(db):
    changes = db.changes("ALTER TABLE orders RENAME TO purchases; ALTER TABLE purchases RENAME COLUMN total TO amount;")
    assert brief(changes) == {("modified", "table", "main.purchases"), ("modified", "column", "main.purchases.amount")}
    assert one(changes, object="main.purchases")["renamed_from"] == "main.orders"
    assert one(changes, object="main.purchases.amount")["renamed_from"] == "main.orders.total"


def test_it_finds_a_renamed_table_that_has_an_index_and_a_renamed_middle_column(db):
    changes = db.changes("ALTER TABLE orders RENAME TO purchases; ALTER TABLE purchases RENAME COLUMN user_id TO buyer")
    assert brief(changes) == {("modified", "table", "main.purchases"), ("modified", "column", "main.purchases.buyer")}
    assert {c["renamed_from"] for c in changes} == {"main.orders", "main.orders.user_id"}
    assert not [c for c in changes if c["risk"] == "critical"]


def test_it_keeps_a_renamed_table_by_its_root_page_when_columns_change_too(db):
    changes = db.changes("ALTER TABLE orders RENAME TO purchases; ALTER TABLE purchases ADD COLUMN paid INTEGER;"
                         "ALTER TABLE purchases DROP COLUMN note")
    assert brief(changes) == {("modified", "table", "main.purchases"), ("added", "column", "main.purchases.paid"),
                              ("removed", "column", "main.orders.note")}
    assert one(changes, object="main.purchases")["renamed_from"] == "main.orders"


def test_it_does_not_take_a_reused_root_page_for_a_rename(db):
    # The dropped table's pages are free; a new, unrelated table may get the same root page.
    changes = db.changes("DROP VIEW big_orders; DROP TABLE orders; CREATE TABLE ledger (a BLOB, b BLOB, c BLOB)")
    assert brief(changes) == {("removed", "table", "main.orders"), ("added", "table", "main.ledger"),
                              ("removed", "view", "main.big_orders")}


def test_it_reads_a_renamed_last_column_as_the_louder_drop_and_add(db):
    # Without OIDs, renaming the last column and dropping it then appending one look the same.
    changes = db.changes("ALTER TABLE orders RENAME COLUMN note TO remark")
    assert brief(changes) == {("removed", "column", "main.orders.note"), ("added", "column", "main.orders.remark")}


def test_it_reports_a_twelve_step_rebuild_as_the_column_change_it_made(db):
    db.conn.execute("DROP VIEW big_orders")  # step 1 of the recipe is to drop dependent views
    changes = db.changes("""
        PRAGMA foreign_keys = OFF;
        BEGIN;
        CREATE TABLE new_orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
                                 total NUMERIC(12,2) NOT NULL DEFAULT 0, note TEXT);
        INSERT INTO new_orders SELECT id, user_id, coalesce(total, 0), note FROM orders;
        DROP TABLE orders;
        ALTER TABLE new_orders RENAME TO orders;
        CREATE INDEX orders_user ON orders (user_id);
        CREATE TRIGGER orders_touch AFTER INSERT ON orders BEGIN SELECT 1; END;
        COMMIT;
    """)
    assert brief(changes) == {("modified", "column", "main.orders.total")}
    total = changes[0]
    assert total["detail"]["before"] == {"type": "REAL", "not_null": False, "default": None}
    assert total["detail"]["after"] == {"type": "NUMERIC(12,2)", "not_null": True, "default": "0"}
    assert total["risk"] == "high"  # populated table, type family and NOT NULL changed


def test_it_bumps_schema_version_only_for_schema_changes(db):
    version = schema_version(db.path)
    db.conn.execute("INSERT INTO users (email) VALUES ('z@x')")
    assert schema_version(db.path) == version
    db.conn.execute("CREATE TABLE later (x)")
    assert schema_version(db.path) > version


def test_it_refuses_a_missing_or_broken_file_clearly(tmp_path):
    with pytest.raises(SnapshotError, match="does not exist"):
        take_snapshot(tmp_path / "nope.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SnapshotError, match="cannot read SQLite file"):
        take_snapshot(junk)
