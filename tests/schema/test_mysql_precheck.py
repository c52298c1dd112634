"""The MySQL/MariaDB pre-check: its digest moves with DDL and grants, not with data."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from monitor_app.schema.mysql_connection import connect
from monitor_app.schema.mysql_precheck import marker_parts, mysql_marker, mysql_marker_for_dsn
from monitor_app.schema.snapshot_format import SnapshotError
from tests.schema.mysql_scratch import MysqlScratch, numbers

BASE = (
    "CREATE TABLE users (id int NOT NULL PRIMARY KEY, email varchar(100), n int, KEY by_n (n), "
    "CONSTRAINT pos CHECK (n >= 0))",
    "CREATE TABLE orders (id int NOT NULL PRIMARY KEY, user_id int, CONSTRAINT fk_user FOREIGN KEY (user_id) "
    "REFERENCES users (id))",
    "CREATE TABLE ev (id int, at int) PARTITION BY RANGE (at) (PARTITION p1 VALUES LESS THAN (10))",
    "CREATE VIEW v AS SELECT id FROM users WHERE n > 1",
    "CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 1",
    "CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW SET NEW.n = coalesce(NEW.n, 0)",
    "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM orders WHERE id < 0",
    "INSERT INTO users SELECT n, concat('u', n), n FROM " + numbers(100),
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
def marker(db):
    conn = connect(db.dsn)
    yield lambda **kw: mysql_marker(conn, **kw)
    conn.close()


def _local(parts: list[str]) -> list[str]:
    # Privileges on *.* are the server's: a test elsewhere on the shared server (tests/metrics grants
    # some) may change them at any time, and every database's digest with them.
    return [part for part in parts if not part.startswith("global_grants:")]


@pytest.fixture()
def local(db):
    """The digest's inputs for this database alone."""
    conn = connect(db.dsn)
    yield lambda: _local(marker_parts(conn))
    conn.close()


@pytest.fixture()
def content(local):
    """Those inputs without the clock a recent CREATE_TIME adds: what the catalogue says."""
    return lambda: [":".join(part.split(":")[:4]) for part in local()]


# One table per ALTER, each altered once: a table's CREATE_TIME (one-second resolution, moved by
# every ALTER of an InnoDB table on MariaDB) is then from an earlier second than the ALTER.
TABLE_DDL = [
    ("CREATE TABLE a1 (id int PRIMARY KEY, x int)", "ALTER TABLE a1 ADD COLUMN extra int"),  # INSTANT
    ("CREATE TABLE a2 (id int PRIMARY KEY, x varchar(10))", "ALTER TABLE a2 MODIFY x varchar(20)"),
    ("CREATE TABLE a3 (id int PRIMARY KEY, x int)", "ALTER TABLE a3 ALTER x SET DEFAULT 3"),
    ("CREATE TABLE a4 (id int PRIMARY KEY, x int, y int)", "ALTER TABLE a4 RENAME COLUMN x TO z"),
    ("CREATE TABLE a5 (id int PRIMARY KEY, x int, KEY kx (x))", "ALTER TABLE a5 ALTER INDEX kx IGNORED"),
    ("CREATE TABLE a6 (id int PRIMARY KEY, x int)", "CREATE INDEX kx ON a6 (x)"),
    ("CREATE TABLE a7 (id int PRIMARY KEY, x int, KEY kx (x))", "ALTER TABLE a7 RENAME INDEX kx TO ky"),
    ("CREATE TABLE a8 (id int PRIMARY KEY, x int, CONSTRAINT c CHECK (x > 0))", "ALTER TABLE a8 DROP CONSTRAINT c"),
    ("CREATE TABLE a9 (id int PRIMARY KEY, x int, CONSTRAINT fk FOREIGN KEY (x) REFERENCES a1 (id))",
     "ALTER TABLE a9 DROP FOREIGN KEY fk"),
    ("CREATE TABLE a10 (id int, at int) PARTITION BY RANGE (at) (PARTITION p1 VALUES LESS THAN (10))",
     "ALTER TABLE a10 ADD PARTITION (PARTITION p2 VALUES LESS THAN (20))"),
    ("CREATE TABLE a11 (id int PRIMARY KEY)", "RENAME TABLE a11 TO a11b"),
    ("CREATE TABLE a12 (id int PRIMARY KEY)", "ALTER TABLE a12 COMMENT 'people'"),
]


def _next_second() -> None:
    time.sleep(1.05 - time.time() % 1)


def test_each_kind_of_table_alter_moves_the_digest(db, content):
    db.run(*(create for create, _ in TABLE_DDL))
    _next_second()
    for _, ddl in TABLE_DDL:
        before = content()
        db.run(ddl)
        assert content() != before, ddl


def test_an_alter_in_the_same_second_as_the_last_is_seen_once_that_second_is_over(db, local):
    db.run("CREATE TABLE same (id int PRIMARY KEY, x int, CONSTRAINT c CHECK (x > 0))")
    before = local()  # most likely in the CREATE's second: CREATE_TIME cannot tell the DROP apart
    db.run("ALTER TABLE same DROP CONSTRAINT c")
    _next_second()
    assert local() != before


@pytest.mark.parametrize("ddl", [
    "CREATE OR REPLACE VIEW v AS SELECT id FROM users WHERE n > 2",  # same definition length
    "CREATE OR REPLACE ALGORITHM = MERGE VIEW v AS SELECT id FROM users WHERE n > 1",
    "DROP FUNCTION f; CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 2",
    "ALTER FUNCTION f COMMENT 'one'",
    "DROP TRIGGER t",
    "DROP TRIGGER t; CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW SET NEW.n = 1",
    "ALTER EVENT e DISABLE",
    "ALTER EVENT e ON SCHEDULE EVERY 2 DAY",
    "ALTER DATABASE `{db}` CHARACTER SET latin1",
], ids=lambda s: s.split(" ", 3)[-1][:40])
def test_other_ddl_moves_the_digest_at_once(db, content, ddl):
    before = content()
    db.run(*ddl.format(db=db.name).split("; "))
    assert content() != before


def test_metadata_only_alters_of_other_engines_move_it_at_once(db, content):
    # Such ALTERs leave a MyISAM or Aria table's CREATE_TIME alone: with one in the database its
    # columns, indexes and constraints are hashed themselves.
    db.run("CREATE TABLE m (id int PRIMARY KEY, x int, y int, KEY kx (x), CONSTRAINT c CHECK (x > 0)) ENGINE=MyISAM")
    for ddl in ("ALTER TABLE m ALTER x SET DEFAULT 3", "ALTER TABLE m RENAME COLUMN y TO z",
                "ALTER TABLE m RENAME INDEX kx TO ky", "ALTER TABLE m ALTER INDEX ky IGNORED",
                "ALTER TABLE m DROP CONSTRAINT c", "ALTER TABLE m COMMENT 'mine'"):
        before = content()
        db.run(ddl)
        assert content() != before, ddl


def _settled(read):
    """What `read` gives once the last DDL's second is over (two reads a second apart agree)."""
    previous = read()
    for _ in range(4):
        time.sleep(1.05)
        current = read()
        if current == previous:
            return current
        previous = current
    raise AssertionError("the digest never settled")


def test_the_digest_stays_put_on_data_writes_and_statistics(db, local):
    before = _settled(local)
    db.run("INSERT INTO users SELECT n + 1000, 'x', n FROM " + numbers(500), "UPDATE users SET n = n + 1",
           "DELETE FROM users WHERE id > 1200", "INSERT INTO orders VALUES (1, 1)", "ANALYZE TABLE users, orders",
           "FLUSH TABLES", "UPDATE users SET email = 'y' WHERE id = 1")
    assert local() == before


def test_the_digest_moves_with_grants_and_with_accounts_when_asked(db, marker, local):
    name = f"'dbmon_p_{uuid.uuid4().hex[:8]}'@'%'"
    db.run(f"CREATE USER {name}")
    try:
        plain = _settled(local)
        db.run(f"GRANT SELECT ON `{db.name}`.users TO {name}")
        assert local() != plain
        plain, full = local(), marker(accounts=True)
        db.run(f"ALTER USER {name} ACCOUNT LOCK")
        # Account attributes live only in the mysql schema: a documented miss of the default digest.
        assert local() == plain and marker(accounts=True) != full
    finally:
        db.run(f"DROP USER IF EXISTS {name}")


def test_it_connects_bounded_and_fails_clearly(db):
    assert re.fullmatch(r"[0-9a-f]{64}", mysql_marker_for_dsn(db.dsn))
    with pytest.raises(SnapshotError, match="cannot connect"):
        mysql_marker_for_dsn("mysql://root:pw@127.0.0.1:1/x?connect_timeout=1")
