"""MySQL/MariaDB snapshots: every object kind read from a real server, bounded, no secrets."""

from __future__ import annotations

import json

import pymysql
import pytest

from monitor_app.schema.mysql_connection import bound_session, connect, parse_dsn, text
from monitor_app.schema.mysql_snapshot import Limits, take_snapshot
from monitor_app.schema.snapshot_format import SnapshotError, content_hash, dump
from tests.schema.mysql_scratch import MysqlScratch, admin_connect, numbers

SCHEMA = (
    "CREATE TABLE users (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, email varchar(190) NOT NULL, "
    "name varchar(50) DEFAULT 'x', age tinyint DEFAULT NULL, "
    "created timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(), "
    "bio text CHARACTER SET latin1, shout varchar(60) AS (upper(name)) VIRTUAL, low varchar(60) AS (lower(name)) STORED, "
    "secret int INVISIBLE, kind enum('a','b') NOT NULL DEFAULT 'a', amount decimal(12,2) DEFAULT 0, "
    "UNIQUE KEY email (email(100)), KEY name_age (name, age DESC), FULLTEXT KEY ft (bio), "
    "CONSTRAINT age_ok CHECK (age >= 0)) ENGINE=InnoDB COMMENT 'people'",
    "CREATE TABLE orders (id bigint PRIMARY KEY, user_id int unsigned, place point NOT NULL, "
    "CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE, SPATIAL KEY place (place), "
    "KEY by_user (user_id))",
    "CREATE TABLE events (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) "
    "PARTITION BY RANGE (year(at)) (PARTITION p2025 VALUES LESS THAN (2026), PARTITION p2026 VALUES LESS THAN (2027))",
    "CREATE VIEW adults AS SELECT id, email FROM users WHERE age >= 18",
    "CREATE PROCEDURE touch(IN who int, OUT done varchar(10)) COMMENT 'marks' SQL SECURITY INVOKER "
    "BEGIN SET done = 'yes'; END",
    "CREATE FUNCTION plus_one(a int) RETURNS int DETERMINISTIC RETURN a + 1",
    "CREATE TRIGGER users_lower BEFORE INSERT ON users FOR EACH ROW SET NEW.name = lower(NEW.name)",
    "CREATE EVENT purge_orders ON SCHEDULE EVERY 1 HOUR DO DELETE FROM orders WHERE id < 0",
)


@pytest.fixture(scope="module")
def scratch():
    db = MysqlScratch()
    yield db
    db.drop()


@pytest.fixture()
def db(scratch):
    scratch.reset()
    return scratch


@pytest.fixture()
def account(db):
    """A throwaway account (accounts are server-wide: unique per test), dropped afterwards."""
    name = f"dbmon_u_{db.name[-10:]}"
    db.run(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'S3cret-pw-{name}'")
    yield f"'{name}'@'%'"
    db.run(f"DROP USER IF EXISTS '{name}'@'%'")


def by_key(snap: dict) -> dict:
    return snap["objects"]


def test_it_reads_every_object_kind(db, account):
    db.run(*SCHEMA, "INSERT INTO users (email) SELECT concat('u', n, '@x') FROM " + numbers(30), "ANALYZE TABLE users")
    db.run(f"GRANT SELECT, INSERT ON `{db.name}`.* TO {account}", f"GRANT DELETE ON `{db.name}`.orders TO {account}",
           f"GRANT UPDATE (name) ON `{db.name}`.users TO {account}",
           f"GRANT EXECUTE ON PROCEDURE `{db.name}`.touch TO {account}")
    snap = db.snapshot()
    objs = by_key(snap)
    assert (snap["engine"], snap["identity"], snap["database"]) == ("mariadb" if "MariaDB" in snap["server_version"]
                                                                    else "mysql", "name", db.name)
    assert objs["database"]["attrs"]["charset"] == "utf8mb4"

    users = objs["table:users"]
    assert users["name"] == f"{db.name}.users" and users["attrs"]["comment"] == "people"
    assert users["attrs"]["engine"] == "InnoDB" and users["attrs"]["collation"] == "utf8mb4_unicode_ci"
    assert 15 <= users["rows"] <= 60  # an estimate of 30
    column = {k.split("/")[1]: o["attrs"] for k, o in objs.items() if k.startswith("col:users/")}
    assert column["id"]["auto_increment"] and column["id"]["type"] == "int unsigned"
    assert column["name"]["default"] == "'x'" and column["age"]["default"] is None
    assert column["created"]["on_update"] == "current_timestamp()"
    assert column["bio"]["charset"] == "latin1"
    assert (column["shout"]["generated"], column["low"]["generated"]) == ("virtual", "stored")
    assert "`name`" in column["low"]["expression"]  # MariaDB spells lower() lcase()
    assert column["secret"]["invisible"] and column["kind"]["type"] == "enum('a','b')"
    assert objs["col:users/amount"]["last"] and objs["col:users/id"]["position"] == 1

    index = {k.split("/")[1]: o["attrs"] for k, o in objs.items() if k.startswith("idx:users/")}
    assert index["email"]["columns"] == ["email(100)"] and index["email"]["unique"]
    assert index["name_age"]["columns"] == ["name", "age DESC"]
    assert index["ft"]["kind"] == "FULLTEXT" and index["PRIMARY"]["primary"]
    assert objs["idx:orders/place"]["attrs"]["kind"] == "SPATIAL"

    fk = objs["con:orders/fk_user"]["attrs"]
    assert (fk["kind"], fk["columns"], fk["references"], fk["on_delete"]) == (
        "foreign key", ["user_id"], f"{db.name}.users", "CASCADE")
    assert ">=" in objs["con:users/age_ok"]["attrs"]["clause"]
    assert objs["table:events"]["attrs"]["partitioning"].startswith("RANGE")
    assert objs["partition:events/p2026"]["attrs"]["bound"] == "2027"

    view = objs["view:adults"]["attrs"]
    assert "`users`.`age` >= 18" in view["definition"] and f"`{db.name}`" not in view["definition"]
    touch = objs["routine:procedure:touch"]["attrs"]
    assert touch["parameters"][0].startswith("IN who int") and touch["parameters"][1] == "OUT done varchar(10)"
    assert (touch["security"], touch["comment"]) == ("INVOKER", "marks") and "SET done" in touch["body"]
    plus = objs["routine:function:plus_one"]["attrs"]
    assert plus["deterministic"] and plus["returns"].startswith("int")
    trigger = objs["trigger:users_lower"]
    assert trigger["parent"] == "table:users" and trigger["attrs"]["timing"] == "BEFORE"
    assert objs["event:purge_orders"]["attrs"]["every"] == "1 HOUR"

    grants = {k: o["attrs"]["grants"] for k, o in objs.items() if o["type"] == "privilege"}
    assert grants["acl:database"] == [f"{account} INSERT", f"{account} SELECT"]
    assert grants["acl:table:orders"] == [f"{account} DELETE"]
    assert grants["acl:col:users/name"] == [f"{account} UPDATE"]
    if snap["accounts"]["routine_grants_visible"]:
        assert grants["acl:routine:procedure:touch"] == [f"{account} EXECUTE"]
    user = objs[f"user:{account}"]["attrs"]
    assert user["global_privileges"] == []
    # Privileges on *.* reach every database: an account holding any is listed with them.
    me_user, me_host = db.value("SELECT CURRENT_USER()").rsplit("@", 1)
    me = f"'{me_user}'@'{me_host}'"
    if db.value(f"SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = \"{me}\" "
                "AND PRIVILEGE_TYPE <> 'USAGE'"):
        assert "SELECT" in objs[f"user:{me}"]["attrs"]["global_privileges"]
    if snap["accounts"]["attributes_visible"]:
        assert user["account_locked"] is False and user["plugin"]


def test_it_never_reads_a_password_hash(db, account):
    db.run(f"GRANT SELECT ON `{db.name}`.* TO {account}")
    user = account.split("'")[1]
    stored = db.fetch(f"SELECT authentication_string FROM mysql.user WHERE User = '{user}'")[0][0]
    stored = stored.decode() if isinstance(stored, bytes) else stored
    document = dump(db.snapshot())
    assert f"user:{account}" in document and len(stored) > 20
    assert stored not in document and "S3cret-pw" not in document and "authentication_string" not in document


def test_it_reads_a_sequence_without_its_current_value(db):
    if "MariaDB" not in db.snapshot()["server_version"]:
        pytest.skip("sequences are MariaDB's")
    db.run("CREATE SEQUENCE s START WITH 10 INCREMENT BY 5")
    before = db.snapshot()["objects"]["seq:s"]["attrs"]
    db.run("SELECT NEXTVAL(s)", "SELECT NEXTVAL(s)")
    assert db.snapshot()["objects"]["seq:s"]["attrs"] == before
    assert "increment by 5" in before["definition"]


def test_it_keeps_innodb_table_ids_as_rename_hints(db):
    db.run("CREATE TABLE a (id int PRIMARY KEY)")
    first = db.snapshot()["objects"]["table:a"]
    # The test account holds PROCESS: a snapshot without the id means the dictionary read broke.
    assert "table_id" in first
    db.run("RENAME TABLE a TO b")
    assert db.snapshot()["objects"]["table:b"]["table_id"] == first["table_id"]
    db.run("ALTER TABLE b MODIFY id bigint")  # a copy: a new table, a new id
    assert db.snapshot()["objects"]["table:b"]["table_id"] != first["table_id"]


def test_it_refuses_a_database_beyond_its_bounds_with_a_clear_error(db):
    db.run("CREATE TABLE a (x int)", "CREATE TABLE b (x int)", "CREATE TABLE c (x int)")
    with pytest.raises(SnapshotError, match=r"more than 2 tables and views"):
        take_snapshot(db.dsn, limits=Limits(tables=2))
    with pytest.raises(SnapshotError, match=r"more than 2 columns"):
        take_snapshot(db.dsn, limits=Limits(rows=2))


def test_it_bounds_long_texts_by_their_hash(db):
    body = "BEGIN " + " ".join(f"SET @v{i} = {i};" for i in range(200)) + " END"
    db.run(f"CREATE PROCEDURE long_one() {body}")
    kept = take_snapshot(db.dsn, limits=Limits(text=100))["objects"]["routine:procedure:long_one"]["attrs"]["body"]
    assert kept.startswith(body[:100]) and f"{len(body):,} characters, sha256 " in kept
    assert len(kept) < 200


def test_its_session_is_bounded_and_read_only(db):
    db.run("CREATE TABLE t (x int)")
    conn = connect(db.dsn + "?statement_timeout=0.5")
    try:
        with conn.cursor() as cur:
            mariadb = "mariadb" in conn.get_server_info().lower()
            cur.execute("SELECT @@max_statement_time" if mariadb else "SELECT @@max_execution_time")
            assert float(cur.fetchone()[0]) == (0.5 if mariadb else 500)
            cur.execute("SELECT @@lock_wait_timeout")
            assert int(cur.fetchone()[0]) == 5
            with pytest.raises(pymysql.MySQLError, match="READ ONLY"):
                cur.execute("INSERT INTO t VALUES (1)")
            if mariadb:
                with pytest.raises(pymysql.MySQLError, match="max_statement_time"):
                    cur.execute("SELECT SLEEP(5) FROM information_schema.TABLES LIMIT 1")
    finally:
        conn.close()
    assert db.value("SELECT COUNT(*) FROM t") == 0


def test_it_refuses_bad_dsns_without_printing_the_password():
    for dsn, message in [("mysql://u:hunter2@h/", "name one database"),
                         ("mysql://u:hunter2@h/db?sslmode=off", "unknown parameter 'sslmode'"),
                         ("mysql://u:hunter2@h/db?ssl=maybe", "ssl must be one of"),
                         ("mysql://u:hunter2@h:notaport/db", "invalid MySQL DSN"),
                         ("mysql://u:hunter2@h/db?connect_timeout=0", "connect_timeout")]:
        with pytest.raises(SnapshotError, match=message) as caught:
            parse_dsn(dsn)
        assert "hunter2" not in caught.value.message
    parsed = parse_dsn("mariadb://app:p%40ss@db.internal:3307/shop?ssl=verify_identity&ssl_ca=/ca.pem")
    assert (parsed.user, parsed.password, parsed.port, parsed.database, parsed.ssl_mode) == (
        "app", "p@ss", 3307, "shop", "verify_identity")
    assert parsed.redacted() == "mariadb://app@db.internal:3307/shop"


def test_it_reports_an_unreachable_server_by_address_only():
    with pytest.raises(SnapshotError, match=r"cannot connect to mysql://u@127\.0\.0\.1:1/db") as caught:
        take_snapshot("mysql://u:hunter2@127.0.0.1:1/db?connect_timeout=1")
    assert "hunter2" not in caught.value.message


def test_it_decodes_bytes_that_are_not_utf8_without_failing():
    assert text(b"caf\xe9 \xff") == "caf\ufffd \ufffd"
    assert text(b"plain") == "plain" and text(7) == 7


def test_a_snapshot_round_trips_through_its_file_form(db, tmp_path):
    db.run(*SCHEMA)
    snap = db.snapshot()
    path = tmp_path / "s.json"
    path.write_text(dump(snap))
    assert json.loads(path.read_text())["objects"].keys() == snap["objects"].keys()


def test_a_session_opened_elsewhere_snapshots_alike_once_bounded(db):
    # How a check will call it with an asset's own connection (text as str, default converters).
    db.run(*SCHEMA)
    conn = admin_connect(db.name)
    try:
        bound_session(conn, 5)
        assert _hash_without_accounts(take_snapshot(conn)) == _hash_without_accounts(db.snapshot())
    finally:
        conn.close()


def _hash_without_accounts(snap: dict) -> str:
    # Accounts with privileges on *.* are the server's: a test elsewhere may add one between two reads.
    return content_hash(dict(snap, objects={k: o for k, o in snap["objects"].items() if o["type"] != "user"}))
