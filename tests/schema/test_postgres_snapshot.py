"""A snapshot holds every object kind of the catalogue, keyed by OID, with the facts risk needs."""

from __future__ import annotations

import json

import pytest

from monitor_app.schema.snapshot_format import SnapshotError, content_hash
from monitor_app.schema.postgres_snapshot import take_snapshot

EVERYTHING = (
    "CREATE SCHEMA app",
    "CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN app.posint AS integer NOT NULL DEFAULT 1 CHECK (VALUE > 0)",
    "CREATE TYPE app.pair AS (a integer, b text)",
    "CREATE TYPE app.span AS RANGE (subtype = float8)",
    "CREATE TABLE app.users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE,"
    " mood app.mood DEFAULT 'ok', score app.posint, shout text GENERATED ALWAYS AS (upper(email)) STORED,"
    " name text COLLATE \"C\")",
    "CREATE TABLE app.orders (id serial PRIMARY KEY, user_id bigint, total numeric(10,2) CHECK (total >= 0),"
    " during tstzrange)",
    "ALTER TABLE app.orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES app.users (id) NOT VALID",
    "CREATE EXTENSION btree_gist",
    "ALTER TABLE app.orders ADD CONSTRAINT no_overlap EXCLUDE USING gist (user_id WITH =, during WITH &&)",
    "CREATE INDEX orders_big ON app.orders (total) WHERE total > 100",
    "CREATE VIEW app.v_users AS SELECT id, email FROM app.users",
    "CREATE MATERIALIZED VIEW app.mv_totals AS SELECT sum(total) AS s FROM app.orders",
    "CREATE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b'",
    "CREATE PROCEDURE app.tidy() LANGUAGE plpgsql AS $$ BEGIN NULL; END $$",
    "CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RETURN NEW; END $$",
    "CREATE TRIGGER orders_stamp BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.stamp()",
    "CREATE SEQUENCE app.tickets INCREMENT 5 START 100 CACHE 10 OWNED BY app.orders.id",
    "ALTER TABLE app.users ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE app.users FORCE ROW LEVEL SECURITY",
    "CREATE POLICY own_rows ON app.users FOR SELECT TO PUBLIC USING (email = current_user)",
    "GRANT SELECT ON app.users TO PUBLIC",
    "GRANT SELECT (total) ON app.orders TO PUBLIC",
    "COMMENT ON TABLE app.users IS 'people'",
    "COMMENT ON COLUMN app.users.email IS 'where mail goes'",
    "COMMENT ON FUNCTION app.add(integer, integer) IS 'sums'",
    "CREATE TABLE app.events (id integer, at date) PARTITION BY RANGE (at)",
    "CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
    "CREATE UNLOGGED TABLE app.scratch (x integer)",
    "CREATE TEMPORARY TABLE not_me (x integer)",
)


def by_name(snap: dict) -> dict[tuple[str, str], dict]:
    return {(o["type"], o["name"]): o for o in snap["objects"].values()}


def test_it_captures_every_object_kind(pg):
    pg.run(*EVERYTHING)
    snap = pg.snapshot()
    objs = by_name(snap)
    assert objs[("schema", "app")]["attrs"]["owner"] == "postgres"
    users = objs[("table", "app.users")]["attrs"]
    assert users["rls_enabled"] and users["rls_forced"] and users["owner"] == "postgres"
    assert objs[("table", "app.scratch")]["attrs"]["unlogged"] is True
    assert objs[("table", "app.events")]["attrs"]["partitioned"] is True
    assert objs[("table", "app.events")]["attrs"]["partition_key"] == "RANGE (at)"
    assert objs[("partition", "app.events_2026")]["attrs"]["of"] == "app.events"
    assert "2026-01-01" in objs[("partition", "app.events_2026")]["attrs"]["bound"]

    assert objs[("column", "app.users.id")]["attrs"]["identity"] == "always"
    assert objs[("column", "app.users.email")]["attrs"]["not_null"] is True
    assert objs[("column", "app.users.mood")]["attrs"]["default"] == "'ok'::app.mood"
    assert objs[("column", "app.users.shout")]["attrs"]["generated"] == "stored"
    assert objs[("column", "app.users.name")]["attrs"]["collation"] == "C"
    assert objs[("column", "app.orders.total")]["attrs"]["type"] == "numeric(10,2)"

    kinds = {o["name"]: o["attrs"]["kind"] for o in snap["objects"].values() if o["type"] == "constraint"}
    assert kinds["app.users.users_pkey"] == "primary key"
    assert kinds["app.users.users_email_key"] == "unique"
    assert kinds["app.orders.orders_total_check"] == "check"
    assert kinds["app.orders.no_overlap"] == "exclusion"
    assert kinds["app.posint.posint_check"] == "check"
    assert objs[("constraint", "app.orders.orders_user_fk")]["attrs"]["validated"] is False

    index = objs[("index", "app.orders_big")]["attrs"]
    assert index["partial"] and not index["unique"] and "WHERE" in index["definition"]
    assert objs[("view", "app.v_users")]["attrs"]["definition"].strip().startswith("SELECT")
    assert "sum(orders.total)" in objs[("materialized view", "app.mv_totals")]["attrs"]["definition"]

    add = objs[("function", "app.add(integer, integer)")]["attrs"]
    assert add["volatility"] == "immutable" and add["language"] == "sql" and "a + b" in add["body"]
    assert objs[("procedure", "app.tidy()")]["attrs"]["language"] == "plpgsql"
    assert objs[("function", "app.stamp()")]["attrs"]["security_definer"] is True
    assert objs[("trigger", "app.orders.orders_stamp")]["attrs"]["enabled"] == "enabled"

    seq = objs[("sequence", "app.tickets")]["attrs"]
    assert (seq["increment"], seq["start"], seq["cache"], seq["owned_by"]) == (5, 100, 10, "app.orders.id")
    assert objs[("sequence", "app.orders_id_seq")]["attrs"]["owned_by"] == "app.orders.id"
    # An identity column's sequence belongs to the column, not to the list of sequences.
    assert not [o for o in snap["objects"].values() if o["name"] == "app.users_id_seq"]

    assert objs[("type", "app.mood")]["attrs"]["values"] == ["sad", "ok", "happy"]
    domain = objs[("type", "app.posint")]["attrs"]
    assert (domain["kind"], domain["base"], domain["not_null"], domain["default"]) == ("domain", "integer", True, "1")
    assert objs[("type", "app.pair")]["attrs"]["attributes"] == ["a integer", "b text"]
    assert objs[("type", "app.span")]["attrs"]["subtype"] == "double precision"
    assert objs[("extension", "btree_gist")]["attrs"]["version"]
    # Members of an extension are the extension's business, not listed one by one.
    assert not [o for o in snap["objects"].values() if o["name"].startswith("public.gbt")]

    policy = objs[("policy", "app.users.own_rows")]["attrs"]
    assert policy["command"] == "SELECT" and policy["roles"] == ["public"] and "CURRENT_USER" in policy["using"]
    assert "=r/postgres" in objs[("privilege", "app.users")]["attrs"]["grants"]
    assert objs[("privilege", "app.orders.total")]["attrs"] == {"on": "column", "grants": ["=r/postgres"]}
    comments = {o["name"]: o["attrs"]["text"] for o in snap["objects"].values() if o["type"] == "comment"}
    assert comments["app.users"] == "people" and comments["app.users.email"] == "where mail goes"
    assert comments["app.add(integer, integer)"] == "sums"
    assert not [o for o in snap["objects"].values() if "not_me" in o["name"]]


def test_it_keeps_comments_on_the_objects_initdb_made_that_it_lists(pg):
    # The public schema and plpgsql have OIDs below the first user OID, unlike everything else listed.
    pg.run("COMMENT ON SCHEMA public IS 'the app lives here'", "COMMENT ON EXTENSION plpgsql IS 'pl'",
           "CREATE FUNCTION f() RETURNS integer LANGUAGE sql AS 'SELECT 1'", "COMMENT ON FUNCTION f() IS 'one'")
    comments = {o["name"]: o["attrs"]["text"] for o in pg.snapshot()["objects"].values() if o["type"] == "comment"}
    assert comments == {"public": "the app lives here", "plpgsql": "pl", "public.f()": "one"}


def test_it_keys_objects_by_oid_and_is_json_able(pg):
    pg.run("CREATE TABLE t (a integer)")
    snap = pg.snapshot()
    keys = {o["name"]: k for k, o in snap["objects"].items() if o["type"] != "privilege"}
    assert keys["public.t"].startswith("rel:") and keys["public.t.a"].endswith(".1")
    assert json.loads(json.dumps(snap)) == snap


def test_it_records_row_estimates_without_comparing_them(pg):
    pg.run("CREATE TABLE t (a integer)", "INSERT INTO t SELECT generate_series(1, 500)", "ANALYZE t")
    first = pg.snapshot()
    assert by_name(first)[("table", "public.t")]["rows"] == 500
    pg.run("INSERT INTO t SELECT generate_series(1, 500)", "ANALYZE t")
    second = pg.snapshot()
    assert by_name(second)[("table", "public.t")]["rows"] == 1000
    assert content_hash(first) == content_hash(second)


def test_it_reports_an_unreachable_server_clearly():
    with pytest.raises(SnapshotError) as info:
        take_snapshot("postgresql://postgres@127.0.0.1:1/nowhere")
    assert "cannot connect" in info.value.message


def test_it_reads_comments_on_user_objects_only_not_the_built_in_catalogue(pg_database):
    import psycopg2

    from monitor_app.schema.postgres_snapshot import Q_COMMENTS

    with psycopg2.connect(pg_database[1]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TYPE mood AS ENUM ('a', 'b'); CREATE DOMAIN posint AS integer CHECK (VALUE > 0);"
                    "CREATE FUNCTION one() RETURNS integer LANGUAGE sql AS 'SELECT 1';"
                    "COMMENT ON TYPE mood IS 'm'; COMMENT ON DOMAIN posint IS 'd'; COMMENT ON FUNCTION one() IS 'f'")
        cur.execute(Q_COMMENTS)
        read = cur.fetchall()
        cur.execute("SELECT count(*) FROM pg_description")
        everything = cur.fetchone()[0]
    conn.close()
    # Thousands of built-in functions and types are commented; none of them can be a snapshot object.
    assert everything > 1000 and len(read) < 50, (everything, len(read))
    snap = take_snapshot(pg_database[1])
    texts = {o["attrs"]["text"] for o in snap["objects"].values() if o["type"] == "comment"}
    assert {"m", "d", "f"} <= texts
