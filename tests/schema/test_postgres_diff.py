"""DDL on a real PostgreSQL database becomes exactly the change records it should."""

from __future__ import annotations

import psycopg2
import pytest

from tests.schema.conftest import brief, one
from tests.services import role_name

BASE = (
    "CREATE SCHEMA app",
    "CREATE TABLE app.users (id bigint PRIMARY KEY, email text NOT NULL, nick varchar(40))",
    "CREATE TABLE app.orders (id serial PRIMARY KEY, user_id bigint, total numeric(10,2))",
    "CREATE VIEW app.v_users AS SELECT id, email FROM app.users",
    "CREATE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b'",
    "CREATE TYPE app.mood AS ENUM ('sad', 'ok')",
    "CREATE INDEX orders_user ON app.orders (user_id)",
)


def test_it_reports_nothing_when_nothing_changed(pg):
    assert pg.changes(setup=BASE) == []


def test_it_names_objects_as_documented(pg):
    changes = pg.changes(
        "CREATE TABLE app.t (a integer)",
        "ALTER TABLE app.users ADD COLUMN age integer",
        "ALTER TABLE app.users ADD CONSTRAINT age_ok CHECK (age > 0)",
        "CREATE FUNCTION app.f(integer, text) RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA extra",
        "CREATE EXTENSION pg_trgm",
        "COMMENT ON TABLE app.users IS 'people'",
        setup=BASE)
    assert brief(changes) == {
        ("added", "table", "app.t"), ("added", "column", "app.users.age"),
        ("added", "constraint", "app.users.age_ok"), ("added", "function", "app.f(integer, text)"),
        ("added", "schema", "extra"), ("added", "extension", "pg_trgm"), ("added", "comment", "app.users"),
    }
    for change in changes:
        assert set(change) == {"action", "object_type", "object", "risk", "renamed_from", "detail"}
        assert change["detail"]["why"] and change["risk"] in ("low", "medium", "high", "critical")


def test_it_reports_renames_as_renames(pg):
    changes = pg.changes(
        "ALTER TABLE app.users RENAME TO people",
        "ALTER TABLE app.people RENAME COLUMN email TO mail",
        "ALTER INDEX app.orders_user RENAME TO orders_by_user",
        "ALTER FUNCTION app.add(integer, integer) RENAME TO plus",
        "ALTER SCHEMA app RENAME TO application",
        setup=BASE)
    renames = {c["renamed_from"]: c["object"] for c in changes}
    assert renames == {
        "app": "application", "app.users": "application.people", "app.users.email": "application.people.mail",
        "app.orders_user": "application.orders_by_user", "app.add(integer, integer)": "application.plus(integer, integer)",
    }
    assert all(c["action"] == "modified" for c in changes)
    assert one(changes, object="application.people")["risk"] == "high"
    assert one(changes, object="application.orders_by_user")["risk"] == "low"
    # The view's text now names the renamed table; that is the rename, not a second change.
    assert not [c for c in changes if c["object_type"] == "view"]


def test_it_reports_a_move_to_another_schema_as_a_rename(pg):
    changes = pg.changes("CREATE SCHEMA other", "ALTER TABLE app.orders SET SCHEMA other", setup=BASE)
    assert one(changes, object="other.orders")["renamed_from"] == "app.orders"


def test_it_folds_children_into_an_added_or_removed_parent(pg):
    changes = pg.changes(
        "CREATE TABLE app.audit (id serial PRIMARY KEY, what text NOT NULL CHECK (what <> ''), at timestamptz)",
        "CREATE INDEX audit_at ON app.audit (at)",
        "COMMENT ON COLUMN app.audit.what IS 'x'",
        "DROP TABLE app.orders",
        setup=BASE)
    assert brief(changes) == {("added", "table", "app.audit"), ("removed", "table", "app.orders"),
                              ("added", "sequence", "app.audit_id_seq"), ("removed", "sequence", "app.orders_id_seq")}


def test_it_folds_everything_into_a_dropped_schema(pg):
    changes = pg.changes("DROP SCHEMA app CASCADE", setup=BASE)
    assert brief(changes) == {("removed", "schema", "app")}
    assert changes[0]["risk"] == "critical"


@pytest.mark.parametrize("statement", [
    "ANALYZE", "VACUUM", "VACUUM FULL app.users", "REINDEX TABLE app.orders", "REINDEX INDEX CONCURRENTLY app.orders_user",
    "CLUSTER app.orders USING orders_user",
    "CREATE OR REPLACE VIEW app.v_users AS SELECT id, email FROM app.users",
    "CREATE OR REPLACE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b'",
    "DROP INDEX app.orders_user; CREATE INDEX orders_user ON app.orders (user_id)",
    "INSERT INTO app.users SELECT g, 'u' || g FROM generate_series(1, 100) g",
])
def test_it_reports_nothing_for_operations_that_change_no_definition(pg, statement):
    assert pg.changes(statement, setup=BASE) == []


def test_it_reports_nothing_for_rolled_back_ddl(pg):
    pg.run(*BASE)
    before = pg.snapshot()
    pg.conn.autocommit = False
    with pg.conn.cursor() as cur:
        cur.execute("DROP TABLE app.orders")
        cur.execute("ALTER TABLE app.users ADD COLUMN x integer")
    pg.conn.rollback()
    pg.conn.autocommit = True
    from monitor_app.schema.diff import diff
    assert diff(before, pg.snapshot()) == []


def test_it_reports_nothing_for_ddl_that_fails_inside_a_transaction(pg):
    pg.run(*BASE)
    before = pg.snapshot()
    pg.conn.autocommit = False
    with pytest.raises(psycopg2.errors.DuplicateColumn):
        with pg.conn.cursor() as cur:
            cur.execute("CREATE TABLE app.half (a integer)")
            cur.execute("ALTER TABLE app.users ADD COLUMN email text")
    pg.conn.rollback()
    pg.conn.autocommit = True
    from monitor_app.schema.diff import diff
    assert diff(before, pg.snapshot()) == []


def test_it_reports_column_changes_with_before_and_after(pg):
    changes = pg.changes(
        "ALTER TABLE app.users ALTER COLUMN nick TYPE varchar(20)",
        "ALTER TABLE app.users ALTER COLUMN nick SET DEFAULT 'anon'",
        "ALTER TABLE app.orders ALTER COLUMN user_id SET NOT NULL",
        "ALTER TABLE app.orders ALTER COLUMN total TYPE numeric(12,2)",
        setup=BASE)
    nick = one(changes, object="app.users.nick")
    assert nick["detail"]["before"] == {"type": "character varying(40)", "default": None}
    assert nick["detail"]["after"] == {"type": "character varying(20)", "default": "'anon'::character varying"}
    assert nick["risk"] == "high"
    assert one(changes, object="app.orders.user_id")["detail"]["after"] == {"not_null": True}
    assert one(changes, object="app.orders.total")["risk"] == "low"


def test_it_reports_constraints_indexes_and_validation(pg):
    changes = pg.changes(
        "ALTER TABLE app.orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES app.users (id) NOT VALID",
        "ALTER TABLE app.orders ADD CONSTRAINT positive CHECK (total > 0)",
        "CREATE UNIQUE INDEX users_email ON app.users (email) WHERE email <> ''",
        setup=BASE)
    fk = one(changes, object="app.orders.orders_user_fk")
    assert fk["action"] == "added" and fk["detail"]["after"]["validated"] is False and fk["risk"] == "low"
    idx = one(changes, object="app.users_email")
    assert idx["detail"]["after"]["unique"] and idx["detail"]["after"]["partial"]
    assert one(changes, object="app.orders.positive")["detail"]["after"]["kind"] == "check"

    later = pg.changes("ALTER TABLE app.orders VALIDATE CONSTRAINT orders_user_fk")
    assert one(later, object="app.orders.orders_user_fk")["detail"]["after"] == {"validated": True}

    dropped = pg.changes("ALTER TABLE app.users DROP CONSTRAINT users_pkey CASCADE")
    assert brief(dropped) == {("removed", "constraint", "app.users.users_pkey"),
                              ("removed", "constraint", "app.orders.orders_user_fk")}
    # The primary key's index goes with it, not as a second change.
    assert one(dropped, object="app.users.users_pkey")["risk"] == "high"


def test_it_reports_tables_attributes(pg):
    owner = role_name("dbmon_test_owner_role")
    changes = pg.changes(
        "ALTER TABLE app.users ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE app.orders SET UNLOGGED",
        f"CREATE ROLE {owner}",
        f"ALTER TABLE app.orders OWNER TO {owner}",
        setup=BASE)
    try:
        rls = one(changes, object="app.users")
        assert rls["detail"]["after"] == {"rls_enabled": True} and rls["risk"] == "high"
        orders = one(changes, object_type="table", object="app.orders")
        assert orders["detail"]["after"] == {"unlogged": True, "owner": owner}
    finally:
        pg.run(f"DROP OWNED BY {owner}", f"DROP ROLE {owner}")


def test_it_reports_views_functions_and_procedures(pg):
    changes = pg.changes(
        "CREATE OR REPLACE VIEW app.v_users AS SELECT id, email, nick FROM app.users",
        "CREATE OR REPLACE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql STABLE AS 'SELECT a + b + 0'",
        "CREATE PROCEDURE app.tidy() LANGUAGE sql AS 'SELECT 1'",
        "CREATE MATERIALIZED VIEW app.totals AS SELECT count(*) AS n FROM app.orders",
        setup=BASE)
    view = one(changes, object="app.v_users")
    assert view["action"] == "modified" and "nick" in view["detail"]["after"]["definition"]
    fn = one(changes, object="app.add(integer, integer)")
    assert set(fn["detail"]["after"]) == {"body", "volatility"} and fn["risk"] == "medium"
    assert one(changes, object="app.tidy()")["object_type"] == "procedure"
    assert one(changes, object="app.totals")["object_type"] == "materialized view"
    later = pg.changes("DROP VIEW app.v_users", "DROP FUNCTION app.add(integer, integer)")
    assert {c["risk"] for c in later} == {"high"}


def test_it_reports_triggers_sequences_types_extensions_policies(pg):
    changes = pg.changes(
        "CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER stamp BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.stamp()",
        "ALTER SEQUENCE app.orders_id_seq INCREMENT BY 10",
        "ALTER TYPE app.mood ADD VALUE 'happy'",
        "CREATE EXTENSION pg_trgm",
        "CREATE POLICY mine ON app.users USING (true)",
        setup=BASE)
    assert one(changes, object="app.orders.stamp")["object_type"] == "trigger"
    seq = one(changes, object="app.orders_id_seq")
    assert seq["detail"]["before"] == {"increment": 1} and seq["detail"]["after"] == {"increment": 10}
    mood = one(changes, object="app.mood")
    assert mood["detail"]["after"]["values"] == ["sad", "ok", "happy"] and mood["risk"] == "low"
    assert one(changes, object="pg_trgm")["detail"]["after"]["version"]
    assert one(changes, object="app.users.mine")["risk"] == "low"  # RLS is off: no effect yet
    later = pg.changes("ALTER TABLE app.orders DISABLE TRIGGER stamp", "ALTER TYPE app.mood RENAME VALUE 'sad' TO 'blue'")
    assert one(later, object="app.orders.stamp")["detail"]["after"] == {"enabled": "disabled"}
    assert one(later, object="app.mood")["risk"] == "high"


def test_it_reports_domains_and_composite_types(pg):
    changes = pg.changes(
        "CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0)",
        "CREATE TYPE app.pair AS (a integer, b text)",
        setup=BASE)
    assert brief(changes) == {("added", "type", "app.posint"), ("added", "type", "app.pair")}
    later = pg.changes("ALTER DOMAIN app.posint ADD CONSTRAINT small CHECK (VALUE < 100)",
                       "ALTER TYPE app.pair ADD ATTRIBUTE c date")
    assert one(later, object="app.posint.small")["action"] == "added"
    assert one(later, object="app.pair")["detail"]["after"]["attributes"] == ["a integer", "b text", "c date"]


def test_it_reports_privileges_on_the_object_they_are_on(pg):
    changes = pg.changes("GRANT SELECT ON app.users TO PUBLIC", setup=BASE)
    grant = one(changes, object_type="privilege")
    assert grant["object"] == "app.users" and grant["risk"] == "high" and "PUBLIC" in grant["detail"]["why"]
    later = pg.changes("REVOKE SELECT ON app.users FROM PUBLIC")
    assert one(later, object_type="privilege")["risk"] == "high"
    assert "REVOKE" in later[0]["detail"]["why"]


def test_it_reports_partitions_attached_and_detached(pg):
    setup = ("CREATE TABLE ev (id integer, at date) PARTITION BY RANGE (at)",
             "CREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
             "CREATE TABLE ev_2027 (id integer, at date)")
    changes = pg.changes("ALTER TABLE ev DETACH PARTITION ev_2026",
                         "ALTER TABLE ev ATTACH PARTITION ev_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
                         setup=setup)
    assert brief(changes) == {("removed", "partition", "public.ev_2026"), ("added", "partition", "public.ev_2027")}
    assert one(changes, action="removed")["risk"] == "high"
    # A partition created in place is one new table, not a table plus its partition link.
    again = pg.changes("CREATE TABLE ev_2028 PARTITION OF ev FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')")
    assert brief(again) == {("added", "table", "public.ev_2028")}
