"""The risk rubric decides from snapshot facts (row estimates, types) and says why."""

from __future__ import annotations

import pytest

from monitor_app.schema.risk import privilege_change, type_change, type_shape
from tests.schema.conftest import one

SETUP = ("CREATE TABLE full_t (id integer, name varchar(50), note text, n integer)",
         "INSERT INTO full_t SELECT g, 'n' || g, NULL, g FROM generate_series(1, 1000) g",
         "CREATE TABLE empty_t (id integer, name varchar(50), note text, n integer)",
         "ANALYZE")


def test_it_rates_not_null_by_whether_the_table_has_rows(pg):
    changes = pg.changes("ALTER TABLE full_t ALTER COLUMN id SET NOT NULL",
                         "ALTER TABLE empty_t ALTER COLUMN id SET NOT NULL", setup=SETUP)
    full = one(changes, object="public.full_t.id")
    assert full["risk"] == "high" and "about 1,000 rows" in full["detail"]["why"]
    assert full["detail"]["category"] == "data-dependent"
    # No scan on an empty table, but writers that send NULL or omit the column now fail.
    assert one(changes, object="public.empty_t.id")["risk"] == "medium"


def test_it_rates_type_changes_by_width_family_and_rows(pg):
    changes = pg.changes(
        "ALTER TABLE full_t ALTER COLUMN name TYPE varchar(100)",   # widened, no rewrite
        "ALTER TABLE full_t ALTER COLUMN n TYPE bigint",            # widened, rewrite of 1,000 rows
        "ALTER TABLE empty_t ALTER COLUMN n TYPE bigint",           # same, but nothing to rewrite
        "ALTER TABLE full_t ALTER COLUMN id TYPE smallint",         # narrowed
        "ALTER TABLE full_t ALTER COLUMN note TYPE integer USING NULL",  # family change with data
        setup=SETUP)
    risks = {c["object"]: (c["risk"], c["detail"]["category"]) for c in changes}
    assert risks == {
        "public.full_t.name": ("low", "additive"),
        "public.full_t.n": ("medium", "locking/rewrite"),
        "public.empty_t.n": ("low", "additive"),
        "public.full_t.id": ("high", "backward-incompatible"),
        "public.full_t.note": ("high", "data-dependent"),
    }


def test_it_rates_drops_as_destructive(pg):
    setup = SETUP + ("CREATE SCHEMA empty_s", "CREATE SCHEMA busy_s", "CREATE TABLE busy_s.t (id integer)")
    changes = pg.changes("ALTER TABLE full_t DROP COLUMN note", "DROP TABLE empty_t", "DROP SCHEMA empty_s",
                         "DROP SCHEMA busy_s CASCADE", setup=setup)
    risks = {c["object"]: c["risk"] for c in changes}
    assert risks == {"public.full_t.note": "critical", "public.empty_t": "critical", "empty_s": "medium",
                     "busy_s": "critical"}
    assert one(changes, object="public.empty_t")["detail"]["category"] == "destructive"


def test_it_rates_constraints_and_indexes_by_table_size(pg):
    setup = SETUP + ("CREATE TABLE big_t (id integer)", "INSERT INTO big_t SELECT generate_series(1, 150000)",
                     "ANALYZE big_t")
    changes = pg.changes("ALTER TABLE full_t ADD CONSTRAINT positive CHECK (n > 0)",
                         "ALTER TABLE full_t ADD CONSTRAINT later CHECK (n > 0) NOT VALID",
                         "CREATE INDEX big_idx ON big_t (id)", "CREATE INDEX small_idx ON full_t (id)",
                         setup=setup)
    risks = {c["object"]: c["risk"] for c in changes}
    assert risks == {"public.full_t.positive": "medium", "public.full_t.later": "low",
                     "public.big_idx": "medium", "public.small_idx": "low"}
    assert "CONCURRENTLY" in one(changes, object="public.big_idx")["detail"]["why"]


def test_it_rates_security_and_behaviour_changes(pg):
    setup = SETUP + ("CREATE FUNCTION f() RETURNS integer LANGUAGE sql AS 'SELECT 1'",)
    changes = pg.changes("ALTER FUNCTION f() SECURITY DEFINER", "ALTER TABLE full_t FORCE ROW LEVEL SECURITY",
                         "ALTER TABLE full_t ALTER COLUMN n SET DEFAULT 7", setup=setup)
    assert one(changes, object="public.f()")["detail"]["category"] == "security"
    assert one(changes, object="public.full_t")["risk"] == "high"
    assert one(changes, object="public.full_t.n")["risk"] == "low"  # a default where there was none


@pytest.mark.parametrize("before,after,risk", [
    ("character varying(10)", "text", "low"), ("text", "character varying(10)", "high"),
    ("numeric(10,2)", "numeric(12,2)", "low"), ("numeric(10,2)", "numeric(10,1)", "high"),
    ("integer", "bigint", "medium"), ("bigint", "integer", "high"), ("text", "jsonb", "high"),
])
def test_type_rules(before, after, risk):
    assert type_change(before, after, rows=10).risk == risk


def test_type_spellings_agree():
    assert type_shape("BIGSERIAL") == type_shape("bigint")
    assert type_shape("VARCHAR(20)") == type_shape("character varying(20)")
    assert type_shape("DECIMAL(10, 2)") == type_shape("numeric(10,2)")


def test_privilege_rules():
    owner = "alice=arwdDxt/alice"
    assert privilege_change([owner], [owner, "bob=r/alice"]).risk == "low"
    assert privilege_change([owner], [owner, "=r/alice"]).risk == "high"
    assert privilege_change([owner, "bob=rw/alice"], [owner, "bob=r/alice"]).risk == "high"
