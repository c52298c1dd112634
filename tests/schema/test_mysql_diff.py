"""MySQL/MariaDB diffs: each kind of change on a real server, renames kept as renames, no-ops silent.

Every scenario diffs through the CLI from two snapshot files and from a file and the live DSN,
and requires the same answer (`MysqlScratch.changes`)."""

from __future__ import annotations

import uuid

import pytest

from monitor_app.schema.diff import diff
from tests.schema.conftest import brief, one
from tests.schema.mysql_scratch import MysqlScratch, numbers, own_records

BASE = (
    "CREATE TABLE users (id int NOT NULL PRIMARY KEY, email varchar(100) NOT NULL, name varchar(50), "
    "age int, note text, KEY by_name (name))",
    "CREATE TABLE orders (id int NOT NULL PRIMARY KEY, user_id int NOT NULL, total decimal(10,2), "
    "CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES users (id))",
    "INSERT INTO users (id, email, name, age) SELECT n, concat('u', n), concat('n', n), n FROM " + numbers(50),
    "INSERT INTO orders SELECT n, n, 10 FROM " + numbers(20),
)


@pytest.fixture(scope="module")
def scratch():
    db = MysqlScratch()
    yield db
    db.drop()


@pytest.fixture()
def db(scratch):
    scratch.reset()
    scratch.run(*BASE)
    return scratch


@pytest.fixture()
def account(db):
    name = f"dbmon_u_{uuid.uuid4().hex[:8]}"
    db.run(f"CREATE USER '{name}'@'%'")
    yield f"'{name}'@'%'"
    db.run(f"DROP USER IF EXISTS '{name}'@'%'")


def names(db, *parts: str) -> str:
    return ".".join((db.name, *parts))


def test_columns_added_dropped_and_modified(db):
    changes = db.changes("ALTER TABLE users ADD COLUMN nick varchar(20)", "ALTER TABLE users DROP COLUMN note",
                         "ALTER TABLE users MODIFY age bigint NOT NULL")
    assert brief(changes) == {("added", "column", names(db, "users", "nick")),
                              ("removed", "column", names(db, "users", "note")),
                              ("modified", "column", names(db, "users", "age"))}
    age = one(changes, object=names(db, "users", "age"))
    assert age["detail"]["before"] == {"type": "int", "not_null": False}
    assert age["detail"]["after"] == {"type": "bigint", "not_null": True}
    assert one(changes, object=names(db, "users", "note"))["risk"] == "critical"


def test_indexes_added_dropped_and_hidden(db):
    hide = "ALTER TABLE users ALTER INDEX by_name IGNORED"
    changes = db.changes("CREATE UNIQUE INDEX by_email ON users (email(40))",
                         "ALTER TABLE users ADD INDEX by_age (age DESC)", hide)
    assert brief(changes) == {("added", "index", names(db, "users", "by_email")),
                              ("added", "index", names(db, "users", "by_age")),
                              ("modified", "index", names(db, "users", "by_name"))}
    assert one(changes, object=names(db, "users", "by_email"))["detail"]["after"]["columns"] == ["email(40)"]
    hidden = one(changes, object=names(db, "users", "by_name"))
    assert hidden["detail"]["after"] == {"invisible": True} and hidden["risk"] == "medium"
    dropped = db.changes("DROP INDEX by_name ON users")
    assert brief(dropped) == {("removed", "index", names(db, "users", "by_name"))}


def test_foreign_keys_added_changed_and_dropped(db):
    changes = db.changes("ALTER TABLE orders DROP FOREIGN KEY fk_user",
                         "ALTER TABLE orders ADD CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES users (id) "
                         "ON DELETE CASCADE")
    fk = one(changes, object=names(db, "orders", "fk_user"))
    assert (fk["action"], fk["detail"]["before"], fk["detail"]["after"]) == (
        "modified", {"on_delete": "RESTRICT"}, {"on_delete": "CASCADE"})
    dropped = db.changes("ALTER TABLE orders DROP FOREIGN KEY fk_user")
    assert brief(dropped) == {("removed", "constraint", names(db, "orders", "fk_user"))}
    added = db.changes("ALTER TABLE orders ADD CONSTRAINT fk_again FOREIGN KEY (user_id) REFERENCES users (id)")
    fk = one(added, object=names(db, "orders", "fk_again"), object_type="constraint")
    assert fk["detail"]["after"]["references"] == names(db, "users")


def test_check_constraints_added_and_dropped(db):
    changes = db.changes("ALTER TABLE users ADD CONSTRAINT adult CHECK (age >= 0)")
    assert brief(changes) == {("added", "constraint", names(db, "users", "adult"))}
    assert brief(db.changes("ALTER TABLE users DROP CONSTRAINT adult")) == {
        ("removed", "constraint", names(db, "users", "adult"))}


def test_views_created_replaced_and_dropped(db):
    assert brief(db.changes("CREATE VIEW grown AS SELECT id FROM users WHERE age > 30")) == {
        ("added", "view", names(db, "grown"))}
    replaced = db.changes("CREATE OR REPLACE VIEW grown AS SELECT id, name FROM users WHERE age > 30")
    assert brief(replaced) == {("modified", "view", names(db, "grown"))}
    assert "`name`" in replaced[0]["detail"]["after"]["definition"]
    assert brief(db.changes("DROP VIEW grown")) == {("removed", "view", names(db, "grown"))}


def test_routines_created_changed_and_dropped(db):
    assert brief(db.changes("CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 2")) == {
        ("added", "function", names(db, "twice"))}
    changed = db.changes("DROP FUNCTION twice", "CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x + x")
    assert brief(changed) == {("modified", "function", names(db, "twice"))}
    assert changed[0]["detail"]["after"] == {"body": "RETURN x + x"}
    secured = db.changes("ALTER FUNCTION twice SQL SECURITY INVOKER")
    assert secured[0]["detail"]["after"] == {"security": "INVOKER"}
    assert brief(db.changes("DROP FUNCTION twice")) == {("removed", "function", names(db, "twice"))}


def test_triggers_added_changed_and_dropped(db):
    create = "CREATE TRIGGER users_age BEFORE INSERT ON users FOR EACH ROW SET NEW.age = coalesce(NEW.age, 0)"
    assert brief(db.changes(create)) == {("added", "trigger", names(db, "users", "users_age"))}
    changed = db.changes("DROP TRIGGER users_age", create.replace("BEFORE INSERT", "BEFORE UPDATE"))
    assert brief(changed) == {("modified", "trigger", names(db, "users", "users_age"))}
    assert changed[0]["detail"]["after"] == {"event": "UPDATE"}
    assert brief(db.changes("DROP TRIGGER users_age")) == {("removed", "trigger", names(db, "users", "users_age"))}


def test_events_added_changed_and_dropped(db):
    assert brief(db.changes("CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM orders WHERE total < 0")) \
        == {("added", "event", names(db, "nightly"))}
    changed = db.changes("ALTER EVENT nightly DISABLE")
    assert changed[0]["detail"]["after"] == {"status": "DISABLED"}
    assert brief(db.changes("DROP EVENT nightly")) == {("removed", "event", names(db, "nightly"))}


def test_grants_and_revokes_to_an_account(db, account):
    granted = db.changes(f"GRANT SELECT ON `{db.name}`.orders TO {account}")
    assert brief(granted) == {("added", "privilege", names(db, "orders")), ("added", "user", account)}
    assert one(granted, object_type="privilege")["risk"] == "low"
    widened = db.changes(f"GRANT INSERT ON `{db.name}`.orders TO {account}")
    assert brief(widened) == {("modified", "privilege", names(db, "orders"))}
    assert widened[0]["detail"]["after"]["grants"] == [f"{account} INSERT", f"{account} SELECT"]
    revoked = db.changes(f"REVOKE SELECT ON `{db.name}`.orders FROM {account}")
    assert one(revoked, object_type="privilege")["risk"] == "high"
    gone = db.changes(f"REVOKE INSERT ON `{db.name}`.orders FROM {account}")
    assert brief(gone) == {("removed", "privilege", names(db, "orders")), ("removed", "user", account)}


def test_a_renamed_table_is_a_rename_with_its_columns_indexes_and_keys(db):
    changes = db.changes("RENAME TABLE users TO people", "ALTER TABLE people ADD COLUMN extra int")
    assert brief(changes) == {("modified", "table", names(db, "people")),
                              ("added", "column", names(db, "people", "extra"))}
    renamed = one(changes, object=names(db, "people"))
    assert (renamed["renamed_from"], renamed["risk"], renamed["detail"]["rule"]) == (
        names(db, "users"), "high", "rename-table")


def test_a_rename_is_found_without_table_ids_as_on_sqlite(db):
    old = db.snapshot()
    db.run("RENAME TABLE users TO people", "ALTER TABLE people RENAME COLUMN name TO full_name")
    new = db.snapshot()
    for snap in (old, new):
        for obj in snap["objects"].values():
            obj.pop("table_id", None)
    changes = own_records(diff(old, new))
    assert brief(changes) == {("modified", "table", names(db, "people")),
                              ("modified", "column", names(db, "people", "full_name"))}
    assert {c["renamed_from"] for c in changes} == {names(db, "users"), names(db, "users", "name")}


def test_a_table_renamed_and_rebuilt_at_once_reads_as_the_louder_drop_and_add(db):
    # A copy gives the table a new InnoDB id, and a changed column means its content no longer
    # proves what it was: as on SQLite, a drop (critical) is not hidden behind a rename.
    changes = db.changes("ALTER TABLE orders RENAME TO purchases, MODIFY total decimal(12,2)")
    assert brief(changes) == {("removed", "table", names(db, "orders")), ("added", "table", names(db, "purchases"))}
    # Renamed alone, or rebuilt alone, it keeps its identity.
    renamed = db.changes("ALTER TABLE purchases RENAME TO orders, FORCE")
    assert one(renamed, object=names(db, "orders"))["renamed_from"] == names(db, "purchases")


def test_a_renamed_index_is_a_rename(db):
    changes = db.changes("ALTER TABLE users RENAME INDEX by_name TO name_idx")
    assert [(c["action"], c["object"], c["renamed_from"], c["risk"]) for c in changes] == [
        ("modified", names(db, "users", "name_idx"), names(db, "users", "by_name"), "low")]


@pytest.mark.parametrize("statements", [
    ("INSERT INTO users (id, email) VALUES (1000, 'z')", "UPDATE users SET age = age + 1", "DELETE FROM orders"),
    ("ANALYZE TABLE users, orders",),
    ("OPTIMIZE TABLE users",),
    ("ALTER TABLE users FORCE",),
    ("CREATE VIEW v AS SELECT id FROM users", "DROP VIEW v"),
    ("ALTER TABLE users ADD COLUMN tmp int", "ALTER TABLE users DROP COLUMN tmp"),
], ids=["dml", "analyze", "optimize", "force", "view-dropped-again", "column-dropped-again"])
def test_operations_that_change_no_definition_report_nothing(db, statements):
    assert db.changes(*statements) == []


def test_twin_databases_compare_object_by_object(db):
    twin = MysqlScratch("dbmon_twin")
    try:
        twin.run(*BASE[:2])
        changes = own_records(diff(db.snapshot(), twin.snapshot()))
        assert [(c["action"], c["object_type"], c["renamed_from"], c["risk"]) for c in changes] == [
            ("modified", "database", db.name, "low")]
    finally:
        twin.drop()
