"""One test per row of the risk rubric: make the change on a real database, read the rating.

Each case names the rubric row it exercises and the risk docs/schema.md gives it. A PostgreSQL
change is diffed from two snapshot files through the CLI; that the other input forms agree is
what the diff suites (test_postgres_diff.py, test_sqlite.py) check, over every object kind. A rubric row without
a PostgreSQL case, or one the docs table does not list with the same risk, fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor_app.schema.rubric import RUBRIC
from tests.schema.conftest import one


@dataclass(frozen=True)
class Case:
    rule: str
    risk: str
    statements: tuple[str, ...]
    object: str
    setup: tuple[str, ...] = ()
    object_type: str | None = None
    major: int = 15  # the PostgreSQL major that has the DDL; newer than the shared server's runs on a private one


def case(rule: str, risk: str, statements: str | tuple[str, ...], obj: str, *setup: str,
         object_type: str | None = None, major: int = 15) -> Case:
    statements = (statements,) if isinstance(statements, str) else statements
    return Case(rule, risk, statements, obj, setup, object_type, major)


PG_BASE = (
    "CREATE TABLE full_t (id integer PRIMARY KEY, name varchar(50), note text, n integer, flag boolean DEFAULT false)",
    "INSERT INTO full_t SELECT g, 'n' || g, NULL, g FROM generate_series(1, 1000) g",
    "CREATE TABLE empty_t (id integer, name varchar(50), n integer)",
)
BIG = ("CREATE TABLE big_t (id integer, n integer)", "INSERT INTO big_t SELECT g, g FROM generate_series(1, 150000) g")
FUNCTION = "CREATE FUNCTION f() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
TRIGGER = ("CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
           "CREATE TRIGGER t BEFORE INSERT ON full_t FOR EACH ROW EXECUTE FUNCTION stamp()")
PARTITIONS = ("CREATE TABLE ev (id integer, at date) PARTITION BY RANGE (at)",
              "CREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")
VIEW = "CREATE VIEW v AS SELECT id FROM full_t"
ENUM = "CREATE TYPE mood AS ENUM ('sad', 'ok')"

PG_CASES = [
    case("add-column-not-null-no-default", "high", "ALTER TABLE empty_t ADD COLUMN must integer NOT NULL",
         "public.empty_t.must"),
    case("add-column-rewrite", "medium", "ALTER TABLE full_t ADD COLUMN at timestamptz DEFAULT clock_timestamp()",
         "public.full_t.at"),
    case("add-column-rewrite-empty", "low", "ALTER TABLE empty_t ADD COLUMN at timestamptz DEFAULT clock_timestamp()",
         "public.empty_t.at"),
    case("add-column-stable-default", "low", "ALTER TABLE full_t ADD COLUMN at timestamptz NOT NULL DEFAULT now()",
         "public.full_t.at"),
    case("add-column-constant-default", "low", "ALTER TABLE full_t ADD COLUMN k integer NOT NULL DEFAULT 0",
         "public.full_t.k"),
    case("add-column-nullable", "low", "ALTER TABLE full_t ADD COLUMN k integer", "public.full_t.k"),
    case("add-unique-index", "medium", "CREATE UNIQUE INDEX full_t_name ON full_t (name)", "public.full_t_name"),
    case("add-index-large", "medium", "CREATE INDEX big_n ON big_t (n)", "public.big_n", *BIG),
    case("add-index", "low", "CREATE INDEX full_t_n ON full_t (n)", "public.full_t_n"),
    case("add-constraint-not-valid", "low", "ALTER TABLE full_t ADD CONSTRAINT pos CHECK (n > 0) NOT VALID",
         "public.full_t.pos"),
    case("add-constraint-populated", "medium", "ALTER TABLE full_t ADD CONSTRAINT pos CHECK (n > 0)",
         "public.full_t.pos"),
    case("add-constraint-empty", "low", "ALTER TABLE empty_t ADD CONSTRAINT pos CHECK (n > 0)", "public.empty_t.pos"),
    case("add-trigger", "medium", TRIGGER[1], "public.full_t.t", TRIGGER[0]),
    case("add-policy-rls-on", "medium", "CREATE POLICY p ON full_t USING (true)", "public.full_t.p",
         "ALTER TABLE full_t ENABLE ROW LEVEL SECURITY"),
    case("add-policy-rls-off", "low", "CREATE POLICY p ON full_t USING (true)", "public.full_t.p"),
    case("attach-partition", "medium",
         "ALTER TABLE ev ATTACH PARTITION ev_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')", "public.ev_2027",
         *PARTITIONS, "CREATE TABLE ev_2027 (id integer, at date)", object_type="partition"),
    case("add-table", "low", "CREATE TABLE new_t (a integer)", "public.new_t"),
    case("add-view", "low", VIEW, "public.v"),
    case("add-function", "low", FUNCTION, "public.f()"),
    case("add-sequence", "low", "CREATE SEQUENCE s", "public.s"),
    case("add-extension", "low", "CREATE EXTENSION pg_trgm", "pg_trgm"),
    case("drop-table", "critical", "DROP TABLE full_t", "public.full_t"),
    case("drop-column", "critical", "ALTER TABLE full_t DROP COLUMN note", "public.full_t.note"),
    case("drop-schema", "critical", "DROP SCHEMA busy CASCADE", "busy", "CREATE SCHEMA busy",
         "CREATE TABLE busy.t (a integer)"),
    case("drop-empty-schema", "medium", "DROP SCHEMA idle", "idle", "CREATE SCHEMA idle"),
    case("drop-primary-key", "high", "ALTER TABLE full_t DROP CONSTRAINT full_t_pkey", "public.full_t.full_t_pkey"),
    case("drop-constraint", "medium", "ALTER TABLE full_t DROP CONSTRAINT pos", "public.full_t.pos",
         "ALTER TABLE full_t ADD CONSTRAINT pos CHECK (n > 0)"),
    case("drop-unique-index", "medium", "DROP INDEX u", "public.u", "CREATE UNIQUE INDEX u ON full_t (name)"),
    case("drop-index", "medium", "DROP INDEX i", "public.i", "CREATE INDEX i ON full_t (n)"),
    case("detach-partition", "high", "ALTER TABLE ev DETACH PARTITION ev_2026", "public.ev_2026", *PARTITIONS,
         object_type="partition"),
    case("drop-trigger", "medium", "DROP TRIGGER t ON full_t", "public.full_t.t", *TRIGGER),
    case("drop-view", "high", "DROP VIEW v", "public.v", VIEW),
    case("drop-function", "high", "DROP FUNCTION f()", "public.f()", FUNCTION),
    case("drop-sequence", "high", "DROP SEQUENCE s", "public.s", "CREATE SEQUENCE s"),
    case("drop-extension", "high", "DROP EXTENSION pg_trgm", "pg_trgm", "CREATE EXTENSION pg_trgm"),
    case("drop-comment", "low", "COMMENT ON TABLE full_t IS NULL", "public.full_t",
         "COMMENT ON TABLE full_t IS 'people'", object_type="comment"),
    case("revoke", "high", "REVOKE SELECT ON full_t FROM PUBLIC", "public.full_t",
         "GRANT SELECT ON full_t TO PUBLIC", object_type="privilege"),
    case("grant-public", "high", "GRANT SELECT ON full_t TO PUBLIC", "public.full_t", object_type="privilege"),
    case("grant", "low", "GRANT SELECT ON full_t TO pg_monitor", "public.full_t", object_type="privilege"),
    case("rename-table", "high", "ALTER TABLE full_t RENAME TO renamed_t", "public.renamed_t"),
    case("rename-column", "high", "ALTER TABLE full_t RENAME COLUMN note TO remark", "public.full_t.remark"),
    case("rename-referenced", "high", "ALTER VIEW v RENAME TO w", "public.w", VIEW),
    case("rename-internal", "low", "ALTER INDEX i RENAME TO j", "public.j", "CREATE INDEX i ON full_t (n)"),
    case("owner", "medium", "ALTER TABLE full_t OWNER TO pg_monitor", "public.full_t", object_type="table"),
    case("type-narrowed", "high", "ALTER TABLE full_t ALTER COLUMN name TYPE varchar(20)", "public.full_t.name"),
    case("type-family-populated", "high", "ALTER TABLE full_t ALTER COLUMN note TYPE integer USING NULL",
         "public.full_t.note"),
    case("type-family-empty", "medium", "ALTER TABLE empty_t ALTER COLUMN name TYPE integer USING NULL",
         "public.empty_t.name"),
    case("type-widened-in-place", "low", "ALTER TABLE full_t ALTER COLUMN name TYPE varchar(100)",
         "public.full_t.name"),
    case("type-widened-rewrite", "medium", "ALTER TABLE full_t ALTER COLUMN n TYPE bigint", "public.full_t.n"),
    case("type-widened-empty", "low", "ALTER TABLE empty_t ALTER COLUMN n TYPE bigint", "public.empty_t.n"),
    case("set-not-null-populated", "high", "ALTER TABLE full_t ALTER COLUMN n SET NOT NULL", "public.full_t.n"),
    case("set-not-null-empty", "medium", "ALTER TABLE empty_t ALTER COLUMN n SET NOT NULL", "public.empty_t.n"),
    case("drop-not-null", "low", "ALTER TABLE full_t ALTER COLUMN n DROP NOT NULL", "public.full_t.n",
         "ALTER TABLE full_t ALTER COLUMN n SET NOT NULL"),
    case("generated-expression-changed", "medium", "ALTER TABLE full_t ALTER COLUMN twice SET EXPRESSION AS (n * 3)",
         "public.full_t.twice", "ALTER TABLE full_t ADD COLUMN twice integer GENERATED ALWAYS AS (n * 2) STORED",
         major=17),
    case("default-added", "low", "ALTER TABLE full_t ALTER COLUMN n SET DEFAULT 7", "public.full_t.n"),
    case("default-dropped-not-null", "high", "ALTER TABLE full_t ALTER COLUMN k DROP DEFAULT", "public.full_t.k",
         "ALTER TABLE full_t ADD COLUMN k integer NOT NULL DEFAULT 0"),
    case("default-changed", "medium", "ALTER TABLE full_t ALTER COLUMN flag SET DEFAULT true", "public.full_t.flag"),
    case("collation", "medium", 'ALTER TABLE full_t ALTER COLUMN note TYPE text COLLATE "C"', "public.full_t.note"),
    case("rls-enabled", "high", "ALTER TABLE full_t ENABLE ROW LEVEL SECURITY", "public.full_t", object_type="table"),
    case("rls-disabled", "high", "ALTER TABLE full_t DISABLE ROW LEVEL SECURITY", "public.full_t",
         "ALTER TABLE full_t ENABLE ROW LEVEL SECURITY", object_type="table"),
    case("set-logged", "medium", "ALTER TABLE full_t SET UNLOGGED", "public.full_t", object_type="table"),
    case("validate-constraint", "low", "ALTER TABLE full_t VALIDATE CONSTRAINT pos", "public.full_t.pos",
         "ALTER TABLE full_t ADD CONSTRAINT pos CHECK (n > 0) NOT VALID"),
    case("security-definer", "high", "ALTER FUNCTION f() SECURITY DEFINER", "public.f()", FUNCTION),
    case("function-changed", "medium", "CREATE OR REPLACE FUNCTION f() RETURNS integer LANGUAGE sql AS 'SELECT 2'",
         "public.f()", FUNCTION),
    case("view-changed", "medium", "CREATE OR REPLACE VIEW v AS SELECT id, n FROM full_t", "public.v", VIEW),
    case("trigger-changed", "medium", "ALTER TABLE full_t DISABLE TRIGGER t", "public.full_t.t", *TRIGGER),
    case("sequence-owner", "low", "ALTER SEQUENCE s OWNED BY full_t.n", "public.s", "CREATE SEQUENCE s"),
    case("sequence-changed", "medium", "ALTER SEQUENCE s INCREMENT BY 10", "public.s", "CREATE SEQUENCE s"),
    case("enum-value-added", "low", "ALTER TYPE mood ADD VALUE 'happy'", "public.mood", ENUM),
    case("enum-value-removed", "high", "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'", "public.mood", ENUM),
    case("extension-version", "medium", "ALTER EXTENSION pg_trgm UPDATE TO '1.4'", "pg_trgm",
         "CREATE EXTENSION pg_trgm VERSION '1.3'"),
    case("index-valid", "low", "REINDEX INDEX i", "public.i", "CREATE INDEX i ON full_t (n)",
         "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'i'::regclass"),
    case("index-invalid", "medium", "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'i'::regclass",
         "public.i", "CREATE INDEX i ON full_t (n)"),
    case("partition-moved", "high",
         ("ALTER TABLE ev DETACH PARTITION ev_2026",
          "ALTER TABLE ev2 ATTACH PARTITION ev_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"),
         "public.ev_2026", *PARTITIONS, "CREATE TABLE ev2 (id integer, at date) PARTITION BY RANGE (at)",
         object_type="partition"),
    case("comment", "low", "COMMENT ON TABLE full_t IS 'people'", "public.full_t", object_type="comment"),
    case("other-added", "low", "CREATE DOMAIN posint AS integer CHECK (VALUE > 0)", "public.posint"),
    case("other-dropped", "high", "DROP DOMAIN posint", "public.posint", "CREATE DOMAIN posint AS integer"),
    case("other-changed", "medium", "ALTER TABLE full_t SET (fillfactor = 70)", "public.full_t", object_type="table"),
]

SQLITE_BASE = """
CREATE TABLE full_t (id INTEGER PRIMARY KEY, name TEXT, note TEXT, n INTEGER);
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 1000)
  INSERT INTO full_t (id, name, n) SELECT i, 'n' || i, i FROM g;
CREATE TABLE empty_t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER);
"""
SQLITE_VIEW = "CREATE VIEW v AS SELECT id FROM full_t"
SQLITE_TRIGGER = "CREATE TRIGGER t AFTER INSERT ON full_t BEGIN SELECT 1; END"

# The rows whose change SQLite can make with one statement (it has no ALTER COLUMN).
SQLITE_CASES = [
    case("add-column-nullable", "low", "ALTER TABLE full_t ADD COLUMN k INTEGER", "main.full_t.k"),
    case("add-column-constant-default", "low", "ALTER TABLE full_t ADD COLUMN k INTEGER NOT NULL DEFAULT 0",
         "main.full_t.k"),
    case("add-unique-index", "medium", "CREATE UNIQUE INDEX full_t_name ON full_t (name)", "main.full_t_name"),
    case("add-index", "low", "CREATE INDEX full_t_n ON full_t (n)", "main.full_t_n"),
    case("add-trigger", "medium", SQLITE_TRIGGER, "main.full_t.t"),
    case("add-table", "low", "CREATE TABLE new_t (a INTEGER)", "main.new_t"),
    case("add-view", "low", SQLITE_VIEW, "main.v"),
    case("drop-table", "critical", "DROP TABLE full_t", "main.full_t"),
    case("drop-column", "critical", "ALTER TABLE full_t DROP COLUMN note", "main.full_t.note"),
    case("drop-unique-index", "medium", "DROP INDEX u", "main.u", "CREATE UNIQUE INDEX u ON full_t (name)"),
    case("drop-index", "medium", "DROP INDEX i", "main.i", "CREATE INDEX i ON full_t (n)"),
    case("drop-trigger", "medium", "DROP TRIGGER t", "main.full_t.t", SQLITE_TRIGGER),
    case("drop-view", "high", "DROP VIEW v", "main.v", SQLITE_VIEW),
    case("rename-table", "high", "ALTER TABLE full_t RENAME TO renamed_t", "main.renamed_t"),
    case("rename-column", "high", "ALTER TABLE full_t RENAME COLUMN name TO label", "main.full_t.label"),
    case("view-changed", "medium", ("DROP VIEW v", "CREATE VIEW v AS SELECT id, n FROM full_t"), "main.v",
         SQLITE_VIEW),
    case("trigger-changed", "medium",
         ("DROP TRIGGER t", "CREATE TRIGGER t AFTER UPDATE ON full_t BEGIN SELECT 1; END"), "main.full_t.t",
         SQLITE_TRIGGER),
]


def _rated(changes: list[dict], c: Case) -> tuple[str, str]:
    match = {"object": c.object} | ({"object_type": c.object_type} if c.object_type else {})
    record = one(changes, **match)
    return record["risk"], record["detail"]["rule"]


@pytest.mark.parametrize("c", [c for c in PG_CASES if c.major <= 15], ids=lambda c: c.rule)
def test_it_rates_each_rubric_row_on_postgresql(pg, c):
    changes = pg.changes(*c.statements, setup=PG_BASE + c.setup, every_form=False)
    assert _rated(changes, c) == (c.risk, c.rule)


@pytest.mark.slow
@pytest.mark.parametrize("c", [c for c in PG_CASES if c.major > 15], ids=lambda c: c.rule)
def test_it_rates_rubric_rows_of_newer_majors_on_that_major(c):
    from tests.postgres_versions import cluster
    from tests.schema.conftest import PgScratch

    server = cluster(c.major)
    try:
        server.start(listen="")
        url = f"postgresql://postgres@/postgres?host={server.root}&port={server.port}"
        scratch = PgScratch(url)
        try:
            changes = scratch.changes(*c.statements, setup=PG_BASE + c.setup, every_form=False)
        finally:
            scratch.close()
        assert _rated(changes, c) == (c.risk, c.rule)
        big = PgScratch(url)
        try:
            changes = big.changes(*[s.replace("full_t", "big_t") for s in c.statements],
                                  setup=BIG + tuple(s.replace("full_t", "big_t") for s in c.setup), every_form=False)
        finally:
            big.close()
        assert _rated(changes, Case(c.rule, "high", (), c.object.replace("full_t", "big_t"))) == ("high", c.rule)
    finally:
        server.stop()


@pytest.mark.parametrize("c", SQLITE_CASES, ids=lambda c: c.rule)
def test_it_rates_each_rubric_row_on_sqlite(tmp_path, c):
    from tests.schema.conftest import SqliteFile

    db = SqliteFile(tmp_path / "app.db")
    try:
        db.conn.executescript(SQLITE_BASE + ";".join(c.setup))
        changes = db.changes(";".join(c.statements))
    finally:
        db.conn.close()
    assert _rated(changes, c) == (c.risk, c.rule)


def test_it_rates_a_rewrite_of_a_large_table_one_level_higher(pg):
    changes = pg.changes("ALTER TABLE big_t ALTER COLUMN n TYPE bigint",
                         "ALTER TABLE big_t ADD COLUMN token uuid DEFAULT gen_random_uuid()",
                         "ALTER TABLE big_t SET UNLOGGED", setup=BIG, every_form=False)
    rated = {c["object"]: (c["risk"], c["detail"]["rule"]) for c in changes}
    assert rated == {"public.big_t.n": ("high", "type-widened-rewrite"), "public.big_t.token": ("high", "add-column-rewrite"),
                     "public.big_t": ("high", "set-logged")}
    assert "about 150,000 rows" in one(changes, object="public.big_t.n")["detail"]["why"]


@pytest.mark.parametrize("default", ["random()", "gen_random_uuid()::text", "nextval('s')"])
def test_it_knows_other_volatile_defaults_rewrite(pg, default):
    changes = pg.changes(f"ALTER TABLE full_t ADD COLUMN x text DEFAULT {default}",
                         setup=PG_BASE + ("CREATE SEQUENCE s",), every_form=False)
    assert _rated(changes, case("add-column-rewrite", "medium", (), "public.full_t.x")) == \
        ("medium", "add-column-rewrite")


@pytest.mark.parametrize("default", ["CURRENT_TIMESTAMP", "'2026-01-01'::date", "now() + interval '1 day'"])
def test_it_knows_constant_and_once_evaluated_defaults_do_not(pg, default):
    changes = pg.changes(f"ALTER TABLE full_t ADD COLUMN x timestamptz DEFAULT {default}", setup=PG_BASE,
                         every_form=False)
    risk, rule = _rated(changes, case("", "", (), "public.full_t.x"))
    assert risk == "low" and rule in ("add-column-stable-default", "add-column-constant-default")


def test_every_rubric_row_has_a_postgresql_case():
    assert [r.id for r in RUBRIC] == [c.rule for c in PG_CASES]
    assert {c.rule for c in SQLITE_CASES} <= {r.id for r in RUBRIC}


def _docs_rows() -> list[tuple[str, str, str]]:
    text = (Path(__file__).parents[2] / "docs" / "schema.md").read_text()
    return [(m[1], m[2], m[3]) for m in re.finditer(r"^\| `([a-z-]+)` \| (.+?) \| (low|medium|high|critical)", text, re.M)]


def test_the_docs_table_lists_every_rubric_row_with_its_risk():
    assert _docs_rows() == [(r.id, r.change, r.risk) for r in RUBRIC]
