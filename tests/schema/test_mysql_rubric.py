"""The MySQL/MariaDB rubric: each rule made on the real server and rated, the algorithm each rule
claims checked against the server (`ALGORITHM=` accepted, the next cheaper one refused), the
version thresholds applied to the same changes, and the docstring table kept in step with the code."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pymysql
import pytest

from monitor_app.schema import mysql_rubric
from monitor_app.schema.mysql_rubric import RULES
from tests.schema.conftest import one
from tests.schema.mysql_scratch import MysqlScratch, numbers

ALGORITHMS = ("INSTANT", "NOCOPY", "INPLACE", "COPY")  # cheapest first


@dataclass(frozen=True)
class Case:
    rule: str
    risk: str
    statements: tuple[str, ...]
    object: str  # without the database prefix
    setup: tuple[str, ...] = ()
    object_type: str | None = None
    algorithm: str | None = None  # what MariaDB must accept for statements[0] (and refuse one cheaper)
    blocks_writes: bool = False   # LOCK=NONE must be refused


def case(rule, risk, statements, obj, *setup, object_type=None, algorithm=None, blocks_writes=False) -> Case:
    statements = (statements,) if isinstance(statements, str) else tuple(statements)
    return Case(rule, risk, statements, obj, tuple(setup), object_type, algorithm, blocks_writes)


BASE = (
    "CREATE TABLE full_t (id int NOT NULL PRIMARY KEY, name varchar(50), note text, n int, flag tinyint DEFAULT 0, "
    "kind enum('a','b') DEFAULT 'a', c3 varchar(10) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci, "
    "k int NOT NULL DEFAULT 0, last_col int)",
    "INSERT INTO full_t (id, name, n) SELECT n, concat('n', n), n FROM " + numbers(1000),
    "CREATE TABLE empty_t (id int NOT NULL PRIMARY KEY, name varchar(50), n int)",
)
BIG = ("CREATE TABLE big_t (id int NOT NULL PRIMARY KEY, n int)",
       "INSERT INTO big_t SELECT n, n FROM " + numbers(150_000))
PARENT = ("CREATE TABLE parent_t (id int NOT NULL PRIMARY KEY)", "INSERT INTO parent_t SELECT n FROM " + numbers(1000))
RANGES = ("CREATE TABLE ev (id int, at int) PARTITION BY RANGE (at) "
          "(PARTITION p1 VALUES LESS THAN (10), PARTITION p2 VALUES LESS THAN (20))",
          "INSERT INTO ev VALUES (1, 5), (2, 15)")
HASHED = ("CREATE TABLE hp (id int NOT NULL PRIMARY KEY) PARTITION BY HASH (id) PARTITIONS 2",
          "INSERT INTO hp SELECT n FROM " + numbers(100))
NO_PK = ("CREATE TABLE nopk_t (id int NOT NULL, v int)", "INSERT INTO nopk_t SELECT n, n FROM " + numbers(100))
FULLTEXT = ("CREATE TABLE ft_t (id int NOT NULL PRIMARY KEY, body text, FULLTEXT KEY fb (body))",
            "INSERT INTO ft_t VALUES (1, 'x')")
VIEW = "CREATE VIEW v AS SELECT id FROM full_t"
PROC = "CREATE PROCEDURE p() SQL SECURITY INVOKER SELECT 1"
FUNC = "CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 1"
TRIGGER = "CREATE TRIGGER t BEFORE INSERT ON full_t FOR EACH ROW SET NEW.n = coalesce(NEW.n, 0)"
EVENT = "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM full_t WHERE id < 0"
INDEX = "ALTER TABLE full_t ADD INDEX i (n)"
CHECK = "ALTER TABLE full_t ADD CONSTRAINT pos CHECK (n > 0)"
ACCOUNT = ("CREATE USER {user}",)
GRANTED = ACCOUNT + ("GRANT SELECT ON `{db}`.* TO {user}",)

CASES = [
    case("add-column-not-null-no-default", "high", "ALTER TABLE empty_t ADD COLUMN must int NOT NULL", "empty_t.must",
         algorithm="INSTANT"),
    case("add-column-copy", "medium", "ALTER TABLE full_t ADD COLUMN u varchar(36) DEFAULT (uuid())", "full_t.u",
         algorithm="COPY"),
    case("add-column-auto-increment", "medium", "ALTER TABLE full_t ADD COLUMN seqno int NOT NULL AUTO_INCREMENT "
         "UNIQUE", "full_t.seqno", object_type="column", algorithm="INPLACE", blocks_writes=True),
    case("add-column-instant", "low", "ALTER TABLE full_t ADD COLUMN k2 int AFTER id", "full_t.k2",
         algorithm="INSTANT"),
    case("add-column-rebuild", "low", "ALTER TABLE ft_t ADD COLUMN z int", "ft_t.z", *FULLTEXT, algorithm="INPLACE"),
    case("add-primary-key", "medium", "ALTER TABLE nopk_t ADD PRIMARY KEY (id)", "nopk_t.PRIMARY", *NO_PK,
         algorithm="INPLACE"),
    case("add-unique-index", "medium", "ALTER TABLE full_t ADD UNIQUE INDEX u (name)", "full_t.u",
         algorithm="NOCOPY"),
    case("add-fulltext-or-spatial-index", "medium", "ALTER TABLE full_t ADD FULLTEXT INDEX ftn (note)", "full_t.ftn",
         algorithm="INPLACE", blocks_writes=True),
    case("add-index-large", "medium", "ALTER TABLE big_t ADD INDEX big_n (n)", "big_t.big_n", *BIG,
         algorithm="NOCOPY"),
    case("add-index", "low", INDEX, "full_t.i", algorithm="NOCOPY"),
    case("add-foreign-key", "medium", "ALTER TABLE full_t ADD CONSTRAINT fk_p FOREIGN KEY (n) REFERENCES parent_t (id)",
         "full_t.fk_p", *PARENT, object_type="constraint", algorithm="COPY"),
    case("add-check", "medium", CHECK, "full_t.pos", algorithm="COPY"),
    case("add-trigger", "medium", TRIGGER, "full_t.t"),
    case("add-partition", "low", "ALTER TABLE ev ADD PARTITION (PARTITION p3 VALUES LESS THAN (30))", "ev.p3",
         *RANGES),
    case("add-partition-redistribute", "medium", "ALTER TABLE hp ADD PARTITION PARTITIONS 1", "hp.p2", *HASHED),
    case("add-table", "low", "CREATE TABLE new_t (a int)", "new_t"),
    case("add-view", "low", VIEW, "v"),
    case("add-routine", "low", PROC, "p"),
    case("add-sequence", "low", "CREATE SEQUENCE s", "s"),
    case("add-event", "medium", EVENT, "e"),
    case("add-account", "low", ("CREATE USER {user}", "GRANT SELECT ON `{db}`.* TO {user}"), "{user}"),
    case("revoke", "high", "REVOKE SELECT ON `{db}`.full_t FROM {user}", "full_t", *GRANTED,
         "GRANT SELECT ON `{db}`.full_t TO {user}", object_type="privilege"),
    case("grant-with-grant-option", "high", "GRANT SELECT ON `{db}`.full_t TO {user} WITH GRANT OPTION", "full_t",
         *GRANTED, object_type="privilege"),
    case("grant", "low", "GRANT SELECT ON `{db}`.full_t TO {user}", "full_t", *GRANTED, object_type="privilege"),
    case("drop-table", "critical", "DROP TABLE full_t", "full_t"),
    case("drop-column", "critical", "ALTER TABLE full_t DROP COLUMN note", "full_t.note", algorithm="INSTANT"),
    case("drop-partition", "critical", "ALTER TABLE ev DROP PARTITION p1", "ev.p1", *RANGES),
    case("drop-partition-redistribute", "medium", "ALTER TABLE hp COALESCE PARTITION 1", "hp.p1", *HASHED),
    case("drop-primary-key", "high", "ALTER TABLE empty_t DROP PRIMARY KEY", "empty_t.PRIMARY", algorithm="COPY"),
    case("drop-unique-index", "medium", "ALTER TABLE full_t DROP INDEX u", "full_t.u",
         "CREATE UNIQUE INDEX u ON full_t (name)", algorithm="NOCOPY"),
    case("drop-index", "medium", "ALTER TABLE full_t DROP INDEX i", "full_t.i", INDEX, algorithm="NOCOPY"),
    case("drop-constraint", "medium", "ALTER TABLE full_t DROP CONSTRAINT pos", "full_t.pos", CHECK,
         algorithm="INSTANT"),
    case("drop-trigger", "medium", "DROP TRIGGER t", "full_t.t", TRIGGER),
    case("drop-view", "high", "DROP VIEW v", "v", VIEW),
    case("drop-routine", "high", "DROP PROCEDURE p", "p", PROC),
    case("drop-sequence", "high", "DROP SEQUENCE s", "s", "CREATE SEQUENCE s"),
    case("drop-event", "medium", "DROP EVENT e", "e", EVENT),
    case("drop-account", "high", "DROP USER {user}", "{user}", *GRANTED, object_type="user"),
    case("rename-table", "high", "ALTER TABLE full_t RENAME TO renamed_t", "renamed_t", algorithm="INSTANT"),
    case("rename-column", "high", "ALTER TABLE full_t RENAME COLUMN note TO remark", "full_t.remark",
         algorithm="INSTANT"),
    case("rename-view", "high", "RENAME TABLE v TO w", "w", VIEW),
    case("rename-internal", "low", "ALTER TABLE full_t RENAME INDEX i TO j", "full_t.j", INDEX, algorithm="INSTANT"),
    case("type-narrowed", "high", "ALTER TABLE full_t MODIFY name varchar(20)", "full_t.name", algorithm="COPY"),
    case("type-family", "high", "ALTER TABLE full_t MODIFY note int", "full_t.note", algorithm="COPY"),
    case("enum-appended", "low", "ALTER TABLE full_t MODIFY kind enum('a','b','c') DEFAULT 'a'", "full_t.kind",
         algorithm="INSTANT"),
    case("enum-changed", "high", "ALTER TABLE full_t MODIFY kind enum('b','a') DEFAULT 'a'", "full_t.kind",
         algorithm="COPY"),
    case("varchar-extended-in-place", "low", "ALTER TABLE full_t MODIFY name varchar(60)", "full_t.name",
         algorithm="INSTANT"),
    case("type-widened", "medium", "ALTER TABLE full_t MODIFY n bigint", "full_t.n", algorithm="COPY"),
    case("charset-utf8mb4-in-place", "low", "ALTER TABLE full_t MODIFY c3 varchar(10) CHARACTER SET utf8mb4 "
         "COLLATE utf8mb4_general_ci", "full_t.c3", algorithm="INSTANT"),
    case("charset-converted", "high", "ALTER TABLE full_t MODIFY note text CHARACTER SET latin1", "full_t.note",
         algorithm="COPY"),
    case("collation-changed", "medium", "ALTER TABLE full_t MODIFY name varchar(50) COLLATE utf8mb4_bin",
         "full_t.name"),
    case("set-not-null", "high", "ALTER TABLE full_t MODIFY n int NOT NULL", "full_t.n", algorithm="INPLACE"),
    case("drop-not-null", "low", "ALTER TABLE full_t MODIFY k int NULL DEFAULT 0", "full_t.k", algorithm="INPLACE"),
    case("default-added", "low", "ALTER TABLE full_t ALTER n SET DEFAULT 7", "full_t.n", algorithm="INSTANT"),
    case("default-dropped-not-null", "high", "ALTER TABLE full_t ALTER k DROP DEFAULT", "full_t.k",
         algorithm="INSTANT"),
    case("default-changed", "medium", "ALTER TABLE full_t ALTER flag SET DEFAULT 1", "full_t.flag",
         algorithm="INSTANT"),
    case("auto-increment-changed", "medium", "ALTER TABLE full_t MODIFY id int NOT NULL AUTO_INCREMENT", "full_t.id",
         algorithm="COPY"),
    case("generated-changed", "medium", "ALTER TABLE full_t MODIFY g int AS (n + 2) STORED", "full_t.g",
         "ALTER TABLE full_t ADD COLUMN g int AS (n + 1) STORED", algorithm="COPY"),
    case("column-visibility", "medium", "ALTER TABLE full_t MODIFY note text INVISIBLE", "full_t.note"),
    case("on-update-changed", "medium", "ALTER TABLE full_t MODIFY ts timestamp NULL DEFAULT NULL "
         "ON UPDATE current_timestamp()", "full_t.ts", "ALTER TABLE full_t ADD COLUMN ts timestamp NULL DEFAULT NULL"),
    case("comment", "low", "ALTER TABLE full_t COMMENT 'people'", "full_t", object_type="table", algorithm="INSTANT"),
    case("index-hidden", "medium", "ALTER TABLE full_t ALTER INDEX i IGNORED", "full_t.i", INDEX,
         algorithm="INSTANT"),
    case("index-visible", "low", "ALTER TABLE full_t ALTER INDEX i NOT IGNORED", "full_t.i", INDEX,
         "ALTER TABLE full_t ALTER INDEX i IGNORED", algorithm="INSTANT"),
    case("index-redefined", "medium", ("ALTER TABLE full_t DROP INDEX i", "ALTER TABLE full_t ADD INDEX i (n, name)"),
         "full_t.i", INDEX),
    case("constraint-changed", "medium", "ALTER TABLE full_t DROP CONSTRAINT pos, ADD CONSTRAINT pos CHECK (n >= 0)",
         "full_t.pos", CHECK),
    case("engine-changed", "high", "ALTER TABLE full_t ENGINE=MyISAM", "full_t", object_type="table",
         algorithm="COPY"),
    case("partitioning-changed", "medium", "ALTER TABLE full_t PARTITION BY HASH (id) PARTITIONS 2", "full_t",
         object_type="table"),
    case("system-versioning", "medium", "ALTER TABLE full_t ADD SYSTEM VERSIONING", "full_t", object_type="table",
         algorithm="COPY"),
    case("table-options", "low", "ALTER TABLE full_t ROW_FORMAT=COMPACT", "full_t", object_type="table",
         algorithm="INPLACE"),
    case("table-default-charset-instant", "low", "ALTER TABLE full_t DEFAULT CHARACTER SET latin1", "full_t",
         object_type="table", algorithm="INSTANT"),
    case("database-default-charset", "low", "ALTER DATABASE `{db}` CHARACTER SET latin1", "", object_type="database"),
    case("security-definer", "high", "ALTER PROCEDURE p SQL SECURITY DEFINER", "p", PROC),
    case("definer-changed", "medium", "CREATE OR REPLACE DEFINER = 'nobody'@'localhost' VIEW v AS SELECT id FROM full_t",
         "v", VIEW),
    case("view-changed", "medium", "CREATE OR REPLACE VIEW v AS SELECT id, n FROM full_t", "v", VIEW),
    case("routine-changed", "medium", ("DROP FUNCTION f", "CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 2"),
         "f", FUNC),
    case("trigger-changed", "medium", ("DROP TRIGGER t", TRIGGER.replace("BEFORE INSERT", "BEFORE UPDATE")),
         "full_t.t", TRIGGER),
    case("event-changed", "medium", "ALTER EVENT e DISABLE", "e", EVENT),
    case("sequence-changed", "medium", "ALTER SEQUENCE s INCREMENT BY 10", "s", "CREATE SEQUENCE s"),
    case("account-locked", "high", "ALTER USER {user} ACCOUNT LOCK", "{user}", *GRANTED, object_type="user"),
    case("account-changed", "medium", "ALTER USER {user} REQUIRE SSL", "{user}", *GRANTED, object_type="user"),
    case("partition-changed", "medium", "ALTER TABLE ev REORGANIZE PARTITION p2 INTO "
         "(PARTITION p2 VALUES LESS THAN (30))", "ev.p2", *RANGES),
]
# Rules rated in test_mysql_rubric_versions.py instead: with another server's version and flavour,
# two databases compared, objects no server gives, and global privileges, which a shared test server
# must not be given (they reach every database, so every parallel test's snapshot would see them).
ELSEWHERE = {"add-account-global", "account-global-revoked", "account-global-granted",
             "table-default-charset-rebuild", "rename-database", "other-added", "other-dropped", "other-changed"}


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
def user(db):
    name = f"'dbmon_r_{uuid.uuid4().hex[:8]}'@'%'"
    yield name
    db.run(f"DROP USER IF EXISTS {name}")


def _mariadb(db) -> bool:
    return "mariadb" in db.conn.get_server_info().lower()


def _check_algorithm(db, c: Case, statement: str) -> str:
    """Refuse one algorithm cheaper than claimed, then return the statement pinned to the claim."""
    cheaper = ALGORITHMS[ALGORITHMS.index(c.algorithm) - 1] if c.algorithm != "INSTANT" else None
    if cheaper:
        with pytest.raises(pymysql.MySQLError, match="not supported"):
            db.run(f"{statement}, ALGORITHM={cheaper}")
    if c.blocks_writes:
        with pytest.raises(pymysql.MySQLError, match="LOCK=NONE is not supported"):
            db.run(f"{statement}, ALGORITHM={c.algorithm}, LOCK=NONE")
    return f"{statement}, ALGORITHM={c.algorithm}"


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.rule)
def test_it_rates_each_rubric_row_on_the_server(db, user, c):
    fill = {"user": user, "db": db.name}
    statements = [s.format(**fill) for s in c.statements]
    setup = tuple(s.format(**fill) for s in BASE + c.setup)
    if c.algorithm and _mariadb(db):  # the claims are MariaDB's, measured ([T] in the docstring)
        db.run(*setup)
        statements[0] = _check_algorithm(db, c, statements[0])
        setup = ()
    changes = db.changes(*statements, setup=setup)
    target = c.object.format(**fill)
    name = target if target.startswith("'") else ".".join(p for p in (db.name, target) if p)  # accounts: no db
    match = {"object": name} | ({"object_type": c.object_type} if c.object_type else {})
    record = one(changes, **match)
    assert (record["risk"], record["detail"]["rule"]) == (c.risk, c.rule), record


def test_a_rewrite_of_a_large_table_is_one_level_higher(db):
    changes = db.changes("ALTER TABLE big_t MODIFY n bigint", "ALTER TABLE big_t ADD COLUMN u varchar(36) "
                         "DEFAULT (uuid())", setup=BIG)
    rated = {c["object"].rsplit(".", 1)[1]: (c["risk"], c["detail"]["rule"]) for c in changes}
    assert rated == {"n": ("high", "type-widened"), "u": ("high", "add-column-copy")}
    assert re.search(r"about 1\d\d,\d{3} rows", one(changes, object=f"{db.name}.big_t.n")["detail"]["why"])


def test_a_copy_of_an_empty_table_is_low(db):
    changes = db.changes("ALTER TABLE empty_t MODIFY n bigint", setup=BASE)
    assert (changes[0]["risk"], changes[0]["detail"]["rule"]) == ("low", "type-widened")


def test_every_rule_has_a_case():
    assert sorted({c.rule for c in CASES} | ELSEWHERE) == sorted(r.id for r in RULES)
    assert [c.rule for c in CASES] == [r.id for r in RULES if r.id not in ELSEWHERE]


def _docstring_rows() -> list[tuple[str, str]]:
    doc = mysql_rubric.__doc__ or ""
    return [(m[1], m[2].strip()) for m in re.finditer(r"^\| `([a-z0-9-]+)` \| ([^|]+)\|", doc, re.M)]


def test_the_docstring_table_lists_every_rule_with_its_risks():
    def said(rule) -> str:
        extra = [f"{rule.risk_if_large} if large"] if rule.risk_if_large else []
        extra += [f"{rule.risk_if_empty} if empty"] if rule.risk_if_empty else []
        return rule.risk + (f" ({', '.join(extra)})" if extra else "")

    assert _docstring_rows() == [(r.id, said(r)) for r in RULES]
