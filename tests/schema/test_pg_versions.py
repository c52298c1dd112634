"""The PostgreSQL schema watch, posture checks and reachability probe on every supported major.

One private cluster per major (13 to 17, `tests/postgres_versions.py`), shared by this module's
tests for that major; each test works in its own database of it. The same objects and the same
DDL are used on every major, and the diff must name exactly the same changes with the same
rubric rows, plus the changes only a newer major can make (SQL-standard function bodies from
14, NULLS NOT DISTINCT and security_invoker views from 15, MAINTAIN and SET EXPRESSION from 17).
"""

from __future__ import annotations

import json
import select
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
from sqlalchemy import select as sql_select

from monitor_app.assets.reachability import probe_postgres
from monitor_app.posture.check import run_check as run_posture_check
from monitor_app.posture.evaluate import evaluate
from monitor_app.posture.facts import collect
from monitor_app.schema import event_trigger, notifications, trigger_integrity, write_counters
from monitor_app.schema.check import run_check as run_schema_check
from monitor_app.schema.diff import diff
from monitor_app.schema.listener import SchemaListener
from monitor_app.schema.postgres_snapshot import take_snapshot
from monitor_app.schema.precheck import postgres_marker
from monitor_app.schema.snapshot_format import content_hash, dump, load_file
from monitor_app.store.models import Event
from monitor_app.store.models.posture import PostureState
from monitor_app.store.models.schema import SchemaWatchState
from monitor_app.store.models.servers import MonitoredServer
from tests.postgres_versions import cluster, majors
from tests.posture.conftest import release_list_for
from tests.schema.conftest import add_asset, caught_up, make_runtime
from tests.schema.input_forms import diff_every_way, save_snapshot

pytestmark = pytest.mark.slow

MAX_CONNECTIONS, SUPERUSER_RESERVED, RESERVED = 40, 3, 2  # reserved_connections exists from 16


@dataclass
class Server:
    major: int
    cluster: object

    def url(self, database: str = "postgres") -> str:
        """A libpq URL over the cluster's socket: what an operator gives the CLI."""
        return f"postgresql://postgres@/{database}?host={quote(str(self.cluster.root))}&port={self.cluster.port}"

    def new_database(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.cluster.run(f'CREATE DATABASE "{name}"')
        return name

    def run(self, database: str, *statements: str) -> None:
        self.cluster.run(*statements, database=database)

    def value(self, database: str, sql: str):
        conn = self.cluster.connect(database=database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchone()[0]
        finally:
            conn.close()

    def connection(self, database: str = "postgres") -> dict:
        return {**self.cluster.connection(), "database": database}


@pytest.fixture(scope="module", params=majors(), ids=lambda major: f"pg{major}")
def server(request):
    major = request.param
    found = None
    try:
        found = cluster(major)
        limits = {"max_connections": str(MAX_CONNECTIONS), "superuser_reserved_connections": str(SUPERUSER_RESERVED)}
        if major >= 16:
            limits["reserved_connections"] = str(RESERVED)
        found.start(listen="", **limits)
        assert found.server_version_num() // 10000 == major
        # Roles are the cluster's: a grantee for the schema objects, and what posture must flag.
        found.run("CREATE ROLE reader", "CREATE ROLE app LOGIN SUPERUSER",
                  "SET password_encryption = 'md5'", "CREATE ROLE legacy LOGIN PASSWORD 'legacy-secret'")
        yield Server(major, found)
    finally:
        if found is not None:
            found.stop()


# --- every object kind, then DDL on each -------------------------------------------------

# (first major, statement): the objects a snapshot covers, a kind or variant of each.
OBJECTS = (
    (13, "CREATE SCHEMA app"),
    (13, "CREATE TYPE app.mood AS ENUM ('sad', 'ok')"),
    (13, "CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0)"),
    (13, "CREATE TYPE app.pair AS (a integer, b text)"),
    (13, "CREATE TYPE app.span AS RANGE (subtype = float8)"),
    (13, "CREATE TABLE app.users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE,"
         " nick varchar(40), code text, mood app.mood DEFAULT 'ok', score app.posint,"
         " shout text GENERATED ALWAYS AS (upper(email)) STORED, name text COLLATE \"C\")"),
    (13, "CREATE TABLE app.orders (id serial PRIMARY KEY, user_id bigint, total numeric(10,2) CHECK (total >= 0),"
         " during tstzrange, note text) WITH (fillfactor = 90)"),
    (13, "INSERT INTO app.users (email, nick, code) SELECT 'u' || g || '@example.com', 'n' || g, 'c' || g"
         " FROM generate_series(1, 20) g"),
    (13, "INSERT INTO app.orders (user_id, total, during, note) SELECT g, g * 10,"
         " tstzrange('2026-01-01'::timestamptz, '2026-01-02'::timestamptz), 'note ' || g FROM generate_series(1, 20) g"),
    (13, "ALTER TABLE app.orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES app.users (id)"
         " NOT VALID"),
    (13, "CREATE EXTENSION btree_gist"),
    (13, "ALTER TABLE app.orders ADD CONSTRAINT no_overlap EXCLUDE USING gist (user_id WITH =, during WITH &&)"),
    (13, "ALTER TABLE app.orders ADD CONSTRAINT orders_user_during UNIQUE (user_id, during) DEFERRABLE"),
    (13, "CREATE INDEX orders_big ON app.orders (total) WHERE total > 100"),
    (13, "CREATE INDEX orders_lower_note ON app.orders (lower(note))"),
    (13, "CREATE UNIQUE INDEX users_nick ON app.users (nick) INCLUDE (email)"),
    (13, "CREATE VIEW app.v_users AS SELECT id, email FROM app.users"),
    (13, "CREATE MATERIALIZED VIEW app.mv_totals AS SELECT sum(total) AS s FROM app.orders"),
    (13, "CREATE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b'"),
    (13, "CREATE PROCEDURE app.tidy() LANGUAGE plpgsql AS $$ BEGIN NULL; END $$"),
    (13, "CREATE AGGREGATE app.total_of(numeric) (sfunc = numeric_add, stype = numeric)"),
    (13, "CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"),
    (13, "CREATE TRIGGER orders_stamp BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.stamp()"),
    (13, "CREATE SEQUENCE app.tickets INCREMENT 5 START 100 CACHE 10"),
    (13, "ALTER TABLE app.users ENABLE ROW LEVEL SECURITY"),
    (13, "CREATE POLICY own_rows ON app.users FOR SELECT TO PUBLIC USING (email = current_user)"),
    (13, "GRANT SELECT ON app.users TO reader"),
    (13, "GRANT SELECT (total) ON app.orders TO reader"),
    (13, "COMMENT ON TABLE app.users IS 'people'"),
    (13, "COMMENT ON COLUMN app.users.email IS 'where mail goes'"),
    (13, "CREATE TABLE app.events (id integer, at date) PARTITION BY RANGE (at)"),
    (13, "CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"),
    (13, "CREATE TABLE app.events_2027 (id integer, at date)"),
    (13, "CREATE UNLOGGED TABLE app.scratch (x integer)"),
    (13, "CREATE TABLE app.base (x integer)"),
    (13, "CREATE TABLE app.derived (y integer) INHERITS (app.base)"),
    (13, "CREATE FOREIGN DATA WRAPPER nowhere"),
    (13, "CREATE SERVER remote_srv FOREIGN DATA WRAPPER nowhere"),
    (13, "CREATE FOREIGN TABLE app.remote (id integer) SERVER remote_srv"),
    (14, "CREATE FUNCTION app.inc(a integer) RETURNS integer LANGUAGE sql IMMUTABLE RETURN a + 1"),
    (14, "ALTER TABLE app.orders ALTER COLUMN note SET COMPRESSION pglz"),
    (15, "CREATE VIEW app.v_safe WITH (security_invoker = true) AS SELECT id FROM app.users"),
    (15, "ALTER TABLE app.users ADD CONSTRAINT users_code_key UNIQUE NULLS NOT DISTINCT (code)"),
)

# (first major, statement, the change records it makes: action, object type, object, risk, rubric row).
CHANGES = (
    # First: the materialized view reads `total`, whose type changes next.
    (13, "DROP MATERIALIZED VIEW app.mv_totals",
     {("removed", "materialized view", "app.mv_totals", "high", "drop-view")}),
    (13, "ALTER TABLE app.users ADD COLUMN age integer",
     {("added", "column", "app.users.age", "low", "add-column-nullable")}),
    (13, "ALTER TABLE app.users ADD COLUMN joined timestamptz NOT NULL DEFAULT clock_timestamp()",
     {("added", "column", "app.users.joined", "medium", "add-column-rewrite")}),
    (13, "ALTER TABLE app.users ALTER COLUMN nick TYPE varchar(20)",
     {("modified", "column", "app.users.nick", "high", "type-narrowed")}),
    (13, "ALTER TABLE app.orders ALTER COLUMN total TYPE numeric(12,2)",
     {("modified", "column", "app.orders.total", "low", "type-widened-in-place")}),
    (13, "ALTER TABLE app.orders ALTER COLUMN user_id SET NOT NULL",
     {("modified", "column", "app.orders.user_id", "high", "set-not-null-populated")}),
    (13, "ALTER TABLE app.orders ALTER COLUMN note SET DEFAULT 'none'",
     {("modified", "column", "app.orders.note", "low", "default-added")}),
    (13, "ALTER TABLE app.orders VALIDATE CONSTRAINT orders_user_fk",
     {("modified", "constraint", "app.orders.orders_user_fk", "low", "validate-constraint")}),
    (13, "ALTER TABLE app.orders ADD CONSTRAINT total_small CHECK (total < 1000000) NOT VALID",
     {("added", "constraint", "app.orders.total_small", "low", "add-constraint-not-valid")}),
    (13, "ALTER TABLE app.users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%')",
     {("added", "constraint", "app.users.email_has_at", "medium", "add-constraint-populated")}),
    (13, "ALTER TABLE app.orders DROP CONSTRAINT orders_user_during",
     {("removed", "constraint", "app.orders.orders_user_during", "medium", "drop-constraint")}),
    (13, "DROP INDEX app.orders_big",
     {("removed", "index", "app.orders_big", "medium", "drop-index")}),
    (13, "CREATE UNIQUE INDEX orders_note_key ON app.orders (note)",
     {("added", "index", "app.orders_note_key", "medium", "add-unique-index")}),
    (13, "CREATE INDEX users_lower_email ON app.users (lower(email)) WHERE age IS NULL",
     {("added", "index", "app.users_lower_email", "low", "add-index")}),
    (13, "CREATE OR REPLACE VIEW app.v_users AS SELECT id, email, nick FROM app.users",
     {("modified", "view", "app.v_users", "medium", "view-changed")}),
    (13, "CREATE OR REPLACE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE"
         " AS 'SELECT b + a'",
     {("modified", "function", "app.add(integer, integer)", "medium", "function-changed")}),
    (13, "ALTER FUNCTION app.stamp() SECURITY DEFINER",
     {("modified", "function", "app.stamp()", "high", "security-definer")}),
    (13, "DROP PROCEDURE app.tidy()",
     {("removed", "procedure", "app.tidy()", "high", "drop-function")}),
    (13, "DROP AGGREGATE app.total_of(numeric)",
     {("removed", "aggregate", "app.total_of(numeric)", "high", "drop-function")}),
    (13, "ALTER TABLE app.orders DISABLE TRIGGER orders_stamp",
     {("modified", "trigger", "app.orders.orders_stamp", "medium", "trigger-changed")}),
    (13, "ALTER SEQUENCE app.tickets INCREMENT 10",
     {("modified", "sequence", "app.tickets", "medium", "sequence-changed")}),
    (13, "ALTER TYPE app.mood ADD VALUE 'happy'",
     {("modified", "type", "app.mood", "low", "enum-value-added")}),
    (13, "ALTER DOMAIN app.posint SET DEFAULT 1",
     {("modified", "type", "app.posint", "medium", "other-changed")}),
    (13, "CREATE POLICY add_rows ON app.users FOR INSERT TO reader WITH CHECK (true)",
     {("added", "policy", "app.users.add_rows", "medium", "add-policy-rls-on")}),
    (13, "ALTER TABLE app.users FORCE ROW LEVEL SECURITY",
     {("modified", "table", "app.users", "high", "rls-enabled")}),
    (13, "REVOKE SELECT ON app.users FROM reader",
     {("modified", "privilege", "app.users", "high", "revoke")}),
    (13, "GRANT SELECT ON app.v_users TO PUBLIC",
     {("modified", "privilege", "app.v_users", "high", "grant-public")}),
    (13, "COMMENT ON TABLE app.users IS 'customers'",
     {("modified", "comment", "app.users", "low", "comment")}),
    (13, "ALTER TABLE app.events ATTACH PARTITION app.events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
     {("added", "partition", "app.events_2027", "medium", "attach-partition")}),
    (13, "ALTER TABLE app.events DETACH PARTITION app.events_2026",
     {("removed", "partition", "app.events_2026", "high", "detach-partition")}),
    (13, "ALTER TABLE app.scratch SET LOGGED",
     {("modified", "table", "app.scratch", "medium", "set-logged")}),
    (13, "ALTER TABLE app.orders SET (fillfactor = 80)",
     {("modified", "table", "app.orders", "medium", "other-changed")}),
    # The view, the generated column, the policy, the constraint and the index naming `email`
    # change their text with it: that is the rename, reported once.
    (13, "ALTER TABLE app.users RENAME COLUMN email TO mail",
     {("modified", "column", "app.users.mail", "high", "rename-column")}),
    (13, "ALTER TABLE app.derived RENAME TO heir",
     {("modified", "table", "app.heir", "high", "rename-table")}),
    (13, "ALTER TABLE app.users DROP COLUMN mood",
     {("removed", "column", "app.users.mood", "critical", "drop-column")}),
    (13, "DROP FOREIGN TABLE app.remote",
     {("removed", "foreign table", "app.remote", "critical", "drop-table")}),
    (13, "CREATE TABLE app.audit (id bigint PRIMARY KEY, what text)",
     {("added", "table", "app.audit", "low", "add-table")}),
    (13, "CREATE EXTENSION pg_trgm",
     {("added", "extension", "pg_trgm", "low", "add-extension")}),
    (14, "CREATE OR REPLACE FUNCTION app.inc(a integer) RETURNS integer LANGUAGE sql IMMUTABLE RETURN a + 2",
     {("modified", "function", "app.inc(integer)", "medium", "function-changed")}),
    (15, "CREATE UNIQUE INDEX orders_user_key ON app.orders (user_id, note) NULLS NOT DISTINCT",
     {("added", "index", "app.orders_user_key", "medium", "add-unique-index")}),
    (15, "ALTER VIEW app.v_safe SET (security_invoker = false)",
     {("modified", "view", "app.v_safe", "medium", "other-changed")}),
    (17, "GRANT MAINTAIN ON app.orders TO reader",
     {("modified", "privilege", "app.orders", "low", "grant")}),
    # A stored generated column's new expression is its `default`; the rubric rates it as one.
    (17, "ALTER TABLE app.users ALTER COLUMN shout SET EXPRESSION AS (lower(name))",
     {("modified", "column", "app.users.shout", "medium", "generated-expression-changed")}),
)

# What every major's snapshot must hold, by object type.
KINDS = {"schema", "table", "foreign table", "view", "materialized view", "sequence", "column", "constraint",
         "index", "function", "procedure", "aggregate", "trigger", "type", "extension", "policy", "privilege",
         "comment", "partition"}

USER_TABLES = """SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname = 'app'"""
UNSETTLED = """SELECT count(*) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = 'app' AND c.reltuples > 0 AND s.n_live_tup <> c.reltuples"""


def for_major(entries, major: int) -> list:
    return [entry[1:] for entry in entries if entry[0] <= major]


def by_name(snap: dict) -> dict[tuple[str, str], dict]:
    return {(o["type"], o["name"]): o for o in snap["objects"].values()}


def create_objects(server: Server, database: str) -> None:
    """Every object, its rows and their row estimates in one transaction.

    ANALYZE in the transaction that inserted the rows counts them, and reports them to the
    statistics less its own uncommitted inserts, which the commit reports after it: the live
    count never exceeds the estimate, whenever (before 15, through the statistics collector,
    some time later) the commit's report lands."""
    conn = server.cluster.connect(database=database)
    try:
        conn.autocommit = False
        with conn.cursor() as cur:
            for (sql,) in for_major(OBJECTS, server.major):
                cur.execute(sql)
            cur.execute(USER_TABLES)
            cur.execute(f"ANALYZE {cur.fetchone()[0]}")  # nosec B608 - names quoted by format('%I')
        conn.commit()
    finally:
        conn.close()


def analyze(server: Server, database: str) -> None:
    """Fresh row estimates, once the live counts in the statistics agree with them (a report that
    landed after ANALYZE would be added on top of its count; analysed again, it is not)."""
    deadline = time.monotonic() + 15
    conn = server.cluster.connect(database=database)
    try:
        with conn.cursor() as cur:
            cur.execute(USER_TABLES)
            tables = cur.fetchone()[0]
            while True:
                cur.execute(f"ANALYZE {tables}")  # nosec B608 - names quoted by format('%I')
                cur.execute("SELECT pg_stat_clear_snapshot()")
                cur.execute(UNSETTLED)
                if cur.fetchone()[0] == 0:
                    return
                assert time.monotonic() < deadline, "row statistics never matched the estimates"
                time.sleep(0.1)
    finally:
        conn.close()


def freeze(server: Server, database: str) -> str:
    """A copy of `database` as it is now, OIDs included; nobody may be connected to it."""
    copy = f"{database}_frozen"
    server.cluster.run(f'CREATE DATABASE "{copy}" TEMPLATE "{database}"')
    return copy


def assert_snapshot_holds_every_kind(server: Server, snap: dict) -> None:
    objs = by_name(snap)
    assert KINDS <= {o["type"] for o in snap["objects"].values()}
    assert snap["server_version"].startswith(f"{server.major}.")
    assert objs[("column", "app.users.id")]["attrs"]["identity"] == "always"
    assert objs[("column", "app.users.shout")]["attrs"]["generated"] == "stored"
    assert objs[("column", "app.users.name")]["attrs"]["collation"] == "C"
    assert objs[("column", "app.users.mood")]["attrs"]["default"] == "'ok'::app.mood"
    assert objs[("table", "app.orders")]["attrs"]["options"] == ["fillfactor=90"]
    assert objs[("table", "app.scratch")]["attrs"]["unlogged"] is True
    assert objs[("table", "app.derived")]["attrs"]["inherits"] == ["app.base"]
    assert objs[("table", "app.events")]["attrs"]["partition_key"] == "RANGE (at)"
    assert objs[("partition", "app.events_2026")]["attrs"]["of"] == "app.events"
    assert objs[("constraint", "app.orders.orders_user_fk")]["attrs"]["validated"] is False
    assert objs[("constraint", "app.orders.orders_user_during")]["attrs"]["deferrable"] is True
    assert objs[("constraint", "app.orders.no_overlap")]["attrs"]["kind"] == "exclusion"
    assert objs[("index", "app.orders_big")]["attrs"]["partial"] is True
    assert "lower(note)" in objs[("index", "app.orders_lower_note")]["attrs"]["definition"]
    assert "INCLUDE (email)" in objs[("index", "app.users_nick")]["attrs"]["definition"]
    assert objs[("type", "app.mood")]["attrs"]["values"] == ["sad", "ok"]
    assert objs[("type", "app.span")]["attrs"]["subtype"] == "double precision"
    assert objs[("sequence", "app.tickets")]["attrs"]["increment"] == 5
    assert objs[("aggregate", "app.total_of(numeric)")]["attrs"]["language"] == "internal"
    assert objs[("policy", "app.users.own_rows")]["attrs"]["command"] == "SELECT"
    assert "reader=r/postgres" in objs[("privilege", "app.users")]["attrs"]["grants"]
    assert objs[("privilege", "app.orders.total")]["attrs"]["grants"] == ["reader=r/postgres"]
    assert "a + b" in objs[("function", "app.add(integer, integer)")]["attrs"]["body"]
    # Members of an extension are the extension's; an identity column's sequence is the column's.
    assert not [name for _, name in objs if name.startswith("public.gbt")]
    assert ("sequence", "app.users_id_seq") not in objs
    # A range type's constructors are listed as functions; from 14 it also makes a multirange
    # type (not listed) whose constructors are listed the same way.
    assert ("function", "app.span(double precision, double precision)") in objs
    assert (("function", "app.span_multirange(app.span)") in objs) == (server.major >= 14)
    # A SQL-standard body exists from 14 and is read from its parsed form, not `prosrc`.
    if server.major >= 14:
        assert objs[("function", "app.inc(integer)")]["attrs"]["body"].strip() == "RETURN (a + 1)"
    else:
        assert not [name for _, name in objs if name.startswith("app.inc(")]
    if server.major >= 15:
        assert objs[("view", "app.v_safe")]["attrs"]["options"] == ["security_invoker=true"]
        assert "UNIQUE NULLS NOT DISTINCT (code)" in \
            objs[("constraint", "app.users.users_code_key")]["attrs"]["definition"]
    # The owner's default privileges on a table gain MAINTAIN (m) in 17.
    owner_grant = "postgres=arwdDxtm/postgres" if server.major >= 17 else "postgres=arwdDxt/postgres"
    assert owner_grant in objs[("privilege", "app.scratch")]["attrs"]["grants"]


def test_a_snapshot_holds_every_kind_and_the_diff_names_exactly_the_ddl_made(server):
    database = server.new_database("versions")
    create_objects(server, database)
    url = server.url(database)
    before = take_snapshot(url)
    assert_snapshot_holds_every_kind(server, before)

    # The document round-trips: written, read back and diffed, it is the same schema.
    with tempfile.TemporaryDirectory() as workdir:
        old_file = save_snapshot(url, Path(workdir) / "old.json")
        loaded = load_file(old_file)
        assert content_hash(loaded) == content_hash(before) and diff(before, loaded) == []
        assert json.loads(dump(loaded))["objects"] == loaded["objects"]
        frozen = freeze(server, database)
        changes = for_major(CHANGES, server.major)
        server.run(database, *(sql for sql, _ in changes))
        analyze(server, database)
        new_file = save_snapshot(url, Path(workdir) / "new.json")
        records = diff_every_way(old_file=old_file, new_file=new_file, old_dsn=server.url(frozen), new_dsn=url)

    expected = set().union(*(made for _, made in changes))
    found = [(c["action"], c["object_type"], c["object"], c["risk"], c["detail"]["rule"]) for c in records]
    assert len(found) == len(set(found)), found
    assert set(found) == expected, {"unexpected": set(found) - expected, "missing": expected - set(found)}
    renamed = {c["renamed_from"]: c["object"] for c in records if c["renamed_from"]}
    assert renamed == {"app.users.email": "app.users.mail", "app.derived": "app.heir"}

    after = by_name(take_snapshot(url))
    assert after[("index", "app.users_lower_email")]["attrs"]["partial"] is True
    if server.major >= 14:
        record = next(c for c in records if c["object"] == "app.inc(integer)")
        assert record["detail"]["after"]["body"].strip() == "RETURN (a + 2)"
    if server.major >= 15:
        assert "NULLS NOT DISTINCT" in after[("index", "app.orders_user_key")]["attrs"]["definition"]
    if server.major >= 17:
        assert "reader=m/postgres" in after[("privilege", "app.orders")]["attrs"]["grants"]


def test_maintenance_data_and_unchanged_redefinitions_are_no_change(server):
    database = server.new_database("noop")
    create_objects(server, database)
    url = server.url(database)
    before = take_snapshot(url)
    server.run(database, "ANALYZE", "VACUUM", "VACUUM FULL app.users", "REINDEX TABLE app.orders",
               "REINDEX INDEX CONCURRENTLY app.orders_lower_note", "REFRESH MATERIALIZED VIEW app.mv_totals",
               "CREATE OR REPLACE VIEW app.v_users AS SELECT id, email FROM app.users",
               "DROP INDEX app.orders_big", "CREATE INDEX orders_big ON app.orders (total) WHERE total > 100",
               "INSERT INTO app.users (email) VALUES ('late@example.com')")
    assert diff(before, take_snapshot(url)) == []


# --- the event trigger, its notification and the listener --------------------------------

def listen(url: str):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"LISTEN {event_trigger.CHANNEL}")
    return conn


def received(conn, wait: float = 2.0, expected: int | None = None) -> list:
    """Notifications within `wait` s; with `expected`, returned as soon as that many arrived."""
    deadline, notes = time.monotonic() + wait, []
    while time.monotonic() < deadline and (expected is None or len(notes) < expected):
        if select.select([conn], [], [], 0.05) != ([], [], []):
            conn.poll()
            notes.extend(conn.notifies)
            conn.notifies.clear()
    return notes


def wait_for_batches(delivered: list, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(delivered) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def dbmon_objects(server: Server, database: str) -> dict:
    return {"event triggers": server.value(database, "SELECT count(*) FROM pg_event_trigger"),
            "schema": server.value(database, "SELECT count(*) FROM pg_namespace WHERE nspname = '_dbmon'"),
            "functions": server.value(database, "SELECT count(*) FROM pg_proc WHERE proname IN "
                                                f"('{event_trigger.FUNCTION_NAME}', 'send_schema_notification')")}


def test_the_event_trigger_installs_verifies_notifies_and_uninstalls_cleanly(server):
    database = server.new_database("trigger")
    url = server.url(database)
    server.run(database, "CREATE TABLE kept (id integer)")
    before = take_snapshot(url)
    event_trigger.install(url)
    event_trigger.install(url)  # again: a refresh, not a second copy
    conn = server.cluster.connect(database=database)
    try:
        state = trigger_integrity.inspect(conn)
        assert state.intact and state.problems == [] and state.owner == "postgres", state.problems
        assert event_trigger.installed(conn)
    finally:
        conn.close()
    assert diff(before, take_snapshot(url)) == []  # dbmon's own objects are not the schema's

    # The raw notification: the bare tag, from the session that ran the DDL.
    raw = listen(url)
    try:
        ddl = psycopg2.connect(url, application_name="migrate-7")
        ddl.autocommit = True
        with ddl.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            ddl_pid = cur.fetchone()[0]
            cur.execute("CREATE TABLE signed (id integer)")
        (note,) = received(raw, expected=1)
        # A transaction notifies each distinct tag once, at commit; a rolled-back one nothing.
        ddl.autocommit = False
        with ddl.cursor() as cur:
            cur.execute("INSERT INTO kept VALUES (1)")
            cur.execute("CREATE TABLE in_transaction (id integer)")
            cur.execute("ALTER TABLE in_transaction ADD COLUMN name text")
            cur.execute("CREATE TABLE in_transaction_too (id integer)")
        assert received(raw, wait=0.3) == []
        ddl.commit()
        committed = received(raw, expected=2)
        with ddl.cursor() as cur:
            cur.execute("DROP TABLE in_transaction")
        ddl.rollback()
        ddl.close()
        assert received(raw, wait=0.3) == []
    finally:
        raw.close()
    assert (note.payload, note.pid) == ("CREATE TABLE", ddl_pid)
    assert [(n.payload, n.pid) for n in committed] == [("CREATE TABLE", ddl_pid), ("ALTER TABLE", ddl_pid)]
    assert notifications.read(note.payload).tag == "CREATE TABLE"

    # The listener names the sender from the server's view of its pid.
    delivered: list = []
    listener = SchemaListener(url, delivered.append, quiet=0.05, max_wait=0.5)
    listener.start()
    try:
        assert listener.listening.wait(5)
        caught_up(delivered)
        ddl = server.cluster.connect(database=database)  # connected until the batch names it
        ddl.autocommit = True
        with ddl.cursor() as cur:
            cur.execute("SET application_name = 'migrate-8'")
            cur.execute("ALTER TABLE signed ADD COLUMN name text")
        wait_for_batches(delivered, 2)  # the notification's, then the trailing check
        ddl.close()
    finally:
        listener.stop()
    batch, trailing = delivered
    assert (batch.notifications, batch.tags, batch.users, batch.application_names) == \
        (1, ["ALTER TABLE"], ["postgres"], ["migrate-8"])
    assert batch.as_context()["attribution"]["by"] == "server" and listener.rejected == 0
    assert trailing.trailing and trailing.notifications == 0 and trailing.tags == ["ALTER TABLE"]

    with_table = take_snapshot(url)
    assert event_trigger.uninstall(url) is True
    assert dbmon_objects(server, database) == {"event triggers": 0, "schema": 0, "functions": 0}
    conn = server.cluster.connect(database=database)
    try:
        assert not trigger_integrity.inspect(conn).present
    finally:
        conn.close()
    assert diff(with_table, take_snapshot(url)) == []
    raw = listen(url)
    try:
        server.run(database, "CREATE TABLE unheard (id integer)")
        assert received(raw, wait=0.5) == []
    finally:
        raw.close()
    assert event_trigger.uninstall(url) is False


def test_the_schema_check_installs_the_trigger_and_stores_a_baseline(server, sqlite_store, tmp_path):
    database = server.new_database("check")
    create_objects(server, database)
    rt = make_runtime(sqlite_store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(sqlite_store, name=f"pg{server.major}", engine="postgresql",
                         connection=server.connection(database))
    first = run_schema_check(rt, asset_id)
    assert first["baseline"] is True
    with sqlite_store.session() as s:
        assert s.get(SchemaWatchState, asset_id).trigger_installed
    server.run(database, "ALTER TABLE app.users ADD COLUMN age integer")
    second = run_schema_check(rt, asset_id, {"source": "trigger"})
    assert second["changed"] and second["max_risk"] == "low"
    assert dbmon_objects(server, database)["event triggers"] == 1


# --- the pre-check marker -----------------------------------------------------------------

def written(conn, database: str) -> int:
    counts, tracked = write_counters.read(conn)
    assert tracked
    return counts[database]


def test_the_precheck_marker_moves_with_ddl_only(server):
    database = server.new_database("precheck")
    conn = server.cluster.connect(database=database)
    try:
        counted = written(conn, database)
        first = postgres_marker(conn)
        assert first and postgres_marker(conn) == first
        server.run(database, "CREATE TABLE p (id integer)")
        created = postgres_marker(conn)
        assert created != first
        # The fallback pre-check's cue: the catalogue rows DDL writes are counted as the database's.
        deadline = time.monotonic() + 10
        while written(conn, database) == counted:
            assert time.monotonic() < deadline, "pg_stat_database never counted the DDL's catalogue writes"
            time.sleep(0.1)
        server.run(database, "INSERT INTO p SELECT generate_series(1, 100)", "ANALYZE p", "VACUUM p")
        assert postgres_marker(conn) == created  # statistics and vacuum keep xmin
        server.run(database, "ALTER TABLE p ADD COLUMN name text")
        altered = postgres_marker(conn)
        assert altered != created
        server.run(database, "COMMENT ON COLUMN p.name IS 'who'")
        assert postgres_marker(conn) != altered
    finally:
        conn.close()


# --- posture and reachability -------------------------------------------------------------

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def expected_findings(major: int) -> set[str]:
    found = {"hba_trust_local", "superuser_role:app", "md5_role_password:legacy"}
    if major < 15:
        found.add("public_schema_create")  # PUBLIC could CREATE in public until 15
    if major < 14:
        found.add("password_encryption_md5")  # md5 was the default until 14
    return found


def test_posture_collects_every_fact_and_reports_the_known_findings(server):
    conn = psycopg2.connect(server.cluster.dsn())
    try:
        facts = collect(conn, same_host=True)
    finally:
        conn.close()
    assert facts["not_checked"] == {}
    assert facts["server_version_num"] // 10000 == server.major
    assert facts["hba_rules"] and facts["md5_roles"] == ["legacy"] and facts["data_directory"]["mode"] == 0o700
    result = evaluate(facts, release_list_for(facts["server_version_num"]), NOW)
    assert {f.id for f in result.findings} == expected_findings(server.major)
    assert result.not_checked == {}


def test_the_posture_check_runs_without_a_collector_error(server, sqlite_store, tmp_path):
    rt = make_runtime(sqlite_store, tmp_path)
    asset_id = add_asset(sqlite_store, name=f"pg{server.major}", engine="postgresql", connection=server.connection())
    result = run_posture_check(rt, asset_id)
    assert expected_findings(server.major) <= set(result["findings"]) and result["not_checked"] == {}
    with sqlite_store.session() as s:
        state = s.get(PostureState, asset_id)
        assert state.last_error is None and state.server_version.startswith(f"{server.major}.")
        failed = s.scalars(sql_select(Event.type).where(Event.type == "posture.check_failed")).all()
    assert failed == []


def test_the_reachability_probe_logs_in_and_learns_the_connection_limits(server, connection_budget):
    try:
        result = probe_postgres(server.connection(), None, 5, connection_budget)
    finally:
        connection_budget.close()
    assert result.up and result.error is None and result.server_version.startswith(f"{server.major}.")
    reserved = SUPERUSER_RESERVED + (RESERVED if server.major >= 16 else 0)
    with connection_budget.store.session() as s:
        (row,) = s.scalars(sql_select(MonitoredServer)).all()
        assert (row.max_connections, row.reserved_connections) == (MAX_CONNECTIONS, reserved)
