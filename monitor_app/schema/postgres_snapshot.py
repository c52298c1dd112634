"""Snapshot of a PostgreSQL database's catalogue, keyed by OID so renames stay renames.

One query per object kind inside one REPEATABLE READ, read-only transaction, so the
snapshot is consistent even while DDL runs. Objects that belong to an extension, system
schemas, temporary objects and dbmon's own `_dbmon` schema are left out. Objects a
partitioned table clones onto its partitions (columns, indexes, constraints, triggers)
are left out too: they follow their parent and would only repeat its change.
"""

from __future__ import annotations

from typing import Any

import psycopg2
import psycopg2.extras

from monitor_app.schema.catalogue_session import catalogue_first
from monitor_app.schema.snapshot_format import SnapshotError, add_object, new_snapshot

DBMON_SCHEMA = "_dbmon"
# The catalogue queries below are composed only from this module's constants (hence `nosec B608`).
NSP_FILTER = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', '" + DBMON_SCHEMA + "') "
    "AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"
)

RELKIND_TYPES = {"r": "table", "p": "table", "v": "view", "m": "materialized view",
                 "S": "sequence", "f": "foreign table"}
PROKIND_TYPES = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}
CONTYPES = {"p": "primary key", "f": "foreign key", "u": "unique", "c": "check", "x": "exclusion"}
TYPTYPES = {"e": "enum", "d": "domain", "c": "composite", "r": "range"}
VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}
IDENTITY = {"a": "always", "d": "by default"}
TRIGGER_ENABLED = {"O": "enabled", "D": "disabled", "R": "replica", "A": "always"}
POLCMD = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}

Q_EXTENSION_MEMBERS = "SELECT classid::regclass::text AS cat, objid FROM pg_depend WHERE deptype = 'e'"

Q_SCHEMAS = f"""
SELECT n.oid, n.nspname, pg_get_userbyid(n.nspowner) AS owner,
       coalesce(n.nspacl, acldefault('n', n.nspowner))::text[] AS acl
FROM pg_namespace n WHERE {NSP_FILTER}"""  # nosec B608

Q_RELATIONS = f"""
SELECT c.oid, c.relnamespace, n.nspname, c.relname, c.relkind, c.relpersistence,
       c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner, c.reloptions,
       c.relispartition,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound,
       ARRAY(SELECT pn.nspname || '.' || pc.relname FROM pg_inherits i
             JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) AS parents,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS viewdef,
       greatest(c.reltuples, coalesce(s.n_live_tup, 0)) AS rows,
       coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))::text[] AS acl
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence <> 't' AND {NSP_FILTER}"""  # nosec B608

Q_COLUMNS = f"""
SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS dflt, a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS collation,
       a.attacl::text[] AS acl,
       d.adbin IS NOT NULL AND EXISTS (SELECT 1 FROM pg_proc p WHERE p.provolatile = 'v' AND p.proname IN (
         SELECT m[1] FROM regexp_matches(pg_get_expr(d.adbin, d.adrelid), '([A-Za-z_][A-Za-z0-9_$]*)\\s*\\(', 'g') AS m
       )) AS volatile_default
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attnum > 0 AND NOT a.attisdropped AND (a.attislocal OR a.attinhcount = 0)
  AND c.relkind IN ('r', 'p', 'f') AND c.relpersistence <> 't' AND {NSP_FILTER}"""  # nosec B608

Q_CONSTRAINTS = f"""
SELECT co.oid, co.conname, co.contype, co.conrelid, co.contypid, pg_get_constraintdef(co.oid) AS def,
       co.convalidated, co.condeferrable, co.condeferred
FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
WHERE co.contype IN ('p', 'f', 'u', 'c', 'x') AND co.conparentid = 0 AND co.conislocal AND {NSP_FILTER}"""  # nosec B608

Q_INDEXES = f"""
SELECT i.indexrelid, i.indrelid, ic.relname, n.nspname, pg_get_indexdef(i.indexrelid) AS def,
       i.indisunique, i.indisprimary, i.indpred IS NOT NULL AS partial, i.indisvalid,
       (SELECT co.oid FROM pg_constraint co WHERE co.conindid = i.indexrelid
          AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x') LIMIT 1) AS constraint_oid
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE ic.relpersistence <> 't' AND {NSP_FILTER}
  AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)"""  # nosec B608

Q_TRIGGERS = f"""
SELECT t.oid, t.tgrelid, t.tgname, pg_get_triggerdef(t.oid) AS def, t.tgenabled
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {NSP_FILTER}"""  # nosec B608

Q_FUNCTIONS = f"""
SELECT p.oid, p.pronamespace, n.nspname, p.proname, oidvectortypes(p.proargtypes) AS argtypes,
       pg_get_function_arguments(p.oid) AS arguments, p.prokind, pg_get_function_result(p.oid) AS result,
       l.lanname, p.provolatile, p.prosecdef, p.proisstrict, p.proleakproof, p.proparallel,
       {{body}} AS body,
       p.proconfig, pg_get_userbyid(p.proowner) AS owner,
       coalesce(p.proacl, acldefault('f', p.proowner))::text[] AS acl
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE {NSP_FILTER}"""  # nosec B608
# A SQL-standard body (BEGIN ATOMIC ... END, RETURN ...) is kept parsed in `prosqlbody`, which
# PostgreSQL 14 added; before it every body is the text in `prosrc`.
SQL_BODY_SINCE = 140000
SQL_BODY = "CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END"

Q_SEQUENCES = """
SELECT s.seqrelid, format_type(s.seqtypid, NULL) AS type, s.seqstart, s.seqincrement, s.seqmin,
       s.seqmax, s.seqcache, s.seqcycle,
       (SELECT d.deptype FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) AS deptype,
       (SELECT rn.nspname || '.' || rc.relname || '.' || ra.attname FROM pg_depend d
          JOIN pg_class rc ON rc.oid = d.refobjid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
          JOIN pg_attribute ra ON ra.attrelid = d.refobjid AND ra.attnum = d.refobjsubid
          WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) AS owned_by
FROM pg_sequence s"""

Q_TYPES = f"""
SELECT t.oid, t.typnamespace, n.nspname, t.typname, t.typtype, pg_get_userbyid(t.typowner) AS owner,
       CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e
            WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END AS labels,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base,
       t.typnotnull, pg_get_expr(t.typdefaultbin, 0) AS dflt,
       CASE WHEN t.typtype = 'c' THEN ARRAY(SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum) END AS attributes,
       CASE WHEN t.typtype = 'r' THEN (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r
            WHERE r.rngtypid = t.oid) END AS subtype,
       coalesce(t.typacl, acldefault('T', t.typowner))::text[] AS acl
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'c', 'r') AND {NSP_FILTER}
  AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')"""  # nosec B608

Q_EXTENSIONS = """
SELECT e.oid, e.extname, e.extversion, n.nspname FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace"""

Q_POLICIES = f"""
SELECT p.oid, p.polrelid, p.polname, p.polcmd, p.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END
             FROM unnest(p.polroles) AS r ORDER BY 1) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {NSP_FILTER}"""  # nosec B608

# Objects initdb made have OIDs below 16384 (FirstNormalObjectId); of those a snapshot holds only
# the public schema and plpgsql, so the thousands of built-in function comments stay on the server.
Q_COMMENTS = """
SELECT d.classoid::regclass::text AS cat, d.objoid, d.objsubid, d.description FROM pg_description d
WHERE d.classoid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_namespace'::regclass,
  'pg_type'::regclass, 'pg_constraint'::regclass, 'pg_trigger'::regclass, 'pg_policy'::regclass,
  'pg_extension'::regclass)
  AND (d.objoid >= 16384 OR d.classoid IN ('pg_namespace'::regclass, 'pg_extension'::regclass))"""

# pg_description's catalogue -> the key prefixes an object of that catalogue may have here.
COMMENT_TARGETS = {"pg_class": ("rel", "idx"), "pg_proc": ("fn",), "pg_namespace": ("schema",),
                   "pg_type": ("type",), "pg_constraint": ("con",), "pg_trigger": ("trg",),
                   "pg_policy": ("pol",), "pg_extension": ("ext",)}


def connect(dsn: str, *, connect_timeout: float = 5.0, application_name: str = "dbmon-schema"):
    try:
        conn = psycopg2.connect(dsn, connect_timeout=max(1, int(connect_timeout)),
                                application_name=application_name)
        catalogue_first(conn)
        return conn
    except psycopg2.OperationalError as exc:
        raise SnapshotError(f"cannot connect to PostgreSQL: {str(exc).strip()}") from None
    except psycopg2.ProgrammingError as exc:
        raise SnapshotError(f"invalid PostgreSQL DSN: {str(exc).strip()}", permanent=True) from None


def take_snapshot(dsn_or_conn: Any) -> dict:
    """Snapshot through a DSN (connects and closes) or an open psycopg2 connection."""
    if isinstance(dsn_or_conn, str):
        conn = connect(dsn_or_conn)
        try:
            return take_snapshot(conn)
        finally:
            conn.close()
    conn = dsn_or_conn
    previous_autocommit = conn.autocommit
    conn.autocommit = False
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            return _read_catalogue(cur)
    except psycopg2.Error as exc:
        raise SnapshotError(f"catalogue query failed: {str(exc).strip()}") from None
    finally:
        try:
            conn.rollback()
            conn.set_session(isolation_level="DEFAULT", readonly=False)
            conn.autocommit = previous_autocommit
        except psycopg2.Error:
            pass


def _rows(cur, query: str) -> list[dict]:
    cur.execute(query)
    return cur.fetchall()


def _read_catalogue(cur) -> dict:
    return _CatalogueReader(cur).read()


class _CatalogueReader:
    """One method per catalogue kind, in dependency order: later kinds hang under earlier ones
    (columns under relations, indexes under constraints, comments under anything)."""

    def __init__(self, cur) -> None:
        self.cur = cur
        cur.execute("SELECT current_database() AS db, current_setting('server_version') AS version, "
                    "current_setting('server_version_num')::int AS version_num")
        head = cur.fetchone()
        self.version_num = head["version_num"]
        self.snap = new_snapshot("postgresql", "oid", head["db"], head["version"])
        self.objects = self.snap["objects"]
        # Objects an extension owns are the extension's, not the schema's: they are skipped.
        self.members = {(r["cat"], r["objid"]) for r in _rows(cur, Q_EXTENSION_MEMBERS)}
        self.schemas: dict[int, str] = {}
        self.relnames: dict[int, str] = {}
        self.types: dict[int, str] = {}

    def read(self) -> dict:
        for read_kind in (self._schemas, self._relations, self._sequences, self._columns, self._types,
                          self._constraints, self._indexes, self._triggers, self._functions,
                          self._extensions, self._policies, self._comments):
            read_kind()
        return self.snap

    def _rows(self, query: str) -> list[dict]:
        return _rows(self.cur, query)

    def _acl(self, key: str, on: str, grants) -> None:
        if grants is not None:
            obj = self.objects[key]
            add_object(self.snap, f"acl:{key}", "privilege", obj["name"], obj["local"], key,
                       {"on": on, "grants": sorted(grants)})

    def _schemas(self) -> None:
        for r in self._rows(Q_SCHEMAS):
            if ("pg_namespace", r["oid"]) in self.members:
                continue
            self.schemas[r["oid"]] = r["nspname"]
            key = f"schema:{r['oid']}"
            add_object(self.snap, key, "schema", r["nspname"], r["nspname"], None, {"owner": r["owner"]})
            self._acl(key, "schema", r["acl"])

    def _relations(self) -> None:
        for r in self._rows(Q_RELATIONS):
            if ("pg_class", r["oid"]) in self.members or r["relnamespace"] not in self.schemas:
                continue
            name = f"{r['nspname']}.{r['relname']}"
            self.relnames[r["oid"]] = name
            key, kind = f"rel:{r['oid']}", r["relkind"]
            rows = r["rows"] if kind in "rpm" else None
            add_object(self.snap, key, RELKIND_TYPES[kind], name, r["relname"], f"schema:{r['relnamespace']}",
                       _relation_attrs(r), rows=None if rows is None else max(0.0, float(rows)))
            self._acl(key, RELKIND_TYPES[kind], r["acl"])
            if r["relispartition"]:
                # The partition link is its own object under the child table: ATTACH adds it,
                # DETACH removes it, and creating or dropping the child folds it in.
                add_object(self.snap, f"part:{r['oid']}", "partition", name, r["relname"], key,
                           {"of": r["parents"][0] if r["parents"] else None, "bound": r["bound"]})

    def _sequences(self) -> None:
        for r in self._rows(Q_SEQUENCES):
            key = f"rel:{r['seqrelid']}"
            if key not in self.objects:
                continue
            if r["deptype"] == "i":
                # An identity column's sequence is part of that column, not an object of its own.
                self.objects.pop(key)
                self.objects.pop(f"acl:{key}", None)
                continue
            self.objects[key]["attrs"].update(
                type=r["type"], start=r["seqstart"], increment=r["seqincrement"], min=r["seqmin"],
                max=r["seqmax"], cache=r["seqcache"], cycle=r["seqcycle"], owned_by=r["owned_by"])

    def _columns(self) -> None:
        for r in self._rows(Q_COLUMNS):
            table = self.relnames.get(r["attrelid"])
            if table is None:
                continue
            key = f"col:{r['attrelid']}.{r['attnum']}"
            attrs = {"type": r["type"], "not_null": r["attnotnull"], "default": r["dflt"],
                     "identity": IDENTITY.get(r["attidentity"]),
                     "generated": "stored" if r["attgenerated"] == "s" else None, "collation": r["collation"]}
            add_object(self.snap, key, "column", f"{table}.{r['attname']}", r["attname"], f"rel:{r['attrelid']}",
                       attrs)
            # Not compared, for the rubric: a volatile default makes ADD COLUMN rewrite the table.
            # Judged by the names the expression calls (a name any volatile function has counts).
            self.objects[key]["volatile_default"] = r["volatile_default"]
            self._acl(key, "column", r["acl"])

    def _types(self) -> None:
        for r in self._rows(Q_TYPES):
            if ("pg_type", r["oid"]) in self.members or r["typnamespace"] not in self.schemas:
                continue
            name = f"{r['nspname']}.{r['typname']}"
            self.types[r["oid"]] = name
            key = f"type:{r['oid']}"
            add_object(self.snap, key, "type", name, r["typname"], f"schema:{r['typnamespace']}", _type_attrs(r))
            self._acl(key, "type", r["acl"])

    def _constraints(self) -> None:
        for r in self._rows(Q_CONSTRAINTS):
            if r["conrelid"]:
                owner_name, parent = self.relnames.get(r["conrelid"]), f"rel:{r['conrelid']}"
            else:
                owner_name, parent = self.types.get(r["contypid"]), f"type:{r['contypid']}"
            if owner_name is None:
                continue
            # "NOT VALID" is said by `validated`; keeping it in the text would report VALIDATE twice.
            definition = r["def"].removesuffix(" NOT VALID")
            attrs = {"kind": CONTYPES[r["contype"]], "definition": definition, "validated": r["convalidated"],
                     "deferrable": r["condeferrable"], "deferred": r["condeferred"]}
            add_object(self.snap, f"con:{r['oid']}", "constraint", f"{owner_name}.{r['conname']}", r["conname"],
                       parent, attrs)

    def _indexes(self) -> None:
        for r in self._rows(Q_INDEXES):
            if r["indrelid"] not in self.relnames or ("pg_class", r["indexrelid"]) in self.members:
                continue
            # An index that implements a constraint folds into it: adding a primary key is one change.
            parent = f"con:{r['constraint_oid']}" if r["constraint_oid"] else f"rel:{r['indrelid']}"
            if parent not in self.objects:
                parent = f"rel:{r['indrelid']}"
            attrs = {"definition": r["def"], "unique": r["indisunique"], "primary": r["indisprimary"],
                     "partial": r["partial"], "valid": r["indisvalid"], "table": self.relnames[r["indrelid"]]}
            add_object(self.snap, f"idx:{r['indexrelid']}", "index", f"{r['nspname']}.{r['relname']}",
                       r["relname"], parent, attrs)

    def _triggers(self) -> None:
        for r in self._rows(Q_TRIGGERS):
            table = self.relnames.get(r["tgrelid"])
            if table is None:
                continue
            add_object(self.snap, f"trg:{r['oid']}", "trigger", f"{table}.{r['tgname']}", r["tgname"],
                       f"rel:{r['tgrelid']}",
                       {"definition": r["def"], "enabled": TRIGGER_ENABLED.get(r["tgenabled"])})

    def _functions(self) -> None:
        body = SQL_BODY if self.version_num >= SQL_BODY_SINCE else "p.prosrc"
        for r in self._rows(Q_FUNCTIONS.format(body=body)):
            if ("pg_proc", r["oid"]) in self.members or r["pronamespace"] not in self.schemas:
                continue
            kind = PROKIND_TYPES[r["prokind"]]
            attrs = {"arguments": r["arguments"], "result": r["result"], "language": r["lanname"],
                     "volatility": VOLATILITY[r["provolatile"]], "security_definer": r["prosecdef"],
                     "strict": r["proisstrict"], "leakproof": r["proleakproof"], "parallel": r["proparallel"],
                     "body": r["body"], "config": sorted(r["proconfig"]) if r["proconfig"] else None,
                     "owner": r["owner"]}
            key = f"fn:{r['oid']}"
            add_object(self.snap, key, kind, f"{r['nspname']}.{r['proname']}({r['argtypes']})", r["proname"],
                       f"schema:{r['pronamespace']}", attrs)
            self._acl(key, kind, r["acl"])

    def _extensions(self) -> None:
        for r in self._rows(Q_EXTENSIONS):
            add_object(self.snap, f"ext:{r['oid']}", "extension", r["extname"], r["extname"], None,
                       {"version": r["extversion"], "schema": r["nspname"]})

    def _policies(self) -> None:
        for r in self._rows(Q_POLICIES):
            table = self.relnames.get(r["polrelid"])
            if table is None:
                continue
            attrs = {"command": POLCMD[r["polcmd"]], "permissive": r["polpermissive"], "roles": list(r["roles"]),
                     "using": r["qual"], "with_check": r["with_check"]}
            add_object(self.snap, f"pol:{r['oid']}", "policy", f"{table}.{r['polname']}", r["polname"],
                       f"rel:{r['polrelid']}", attrs)

    def _comments(self) -> None:
        for r in self._rows(Q_COMMENTS):
            if r["objsubid"]:
                targets = [f"col:{r['objoid']}.{r['objsubid']}"] if r["cat"] == "pg_class" else []
            else:
                targets = [f"{prefix}:{r['objoid']}" for prefix in COMMENT_TARGETS.get(r["cat"], ())]
            target = next((t for t in targets if t in self.objects), None)
            if target is not None:
                obj = self.objects[target]
                add_object(self.snap, f"comment:{target}", "comment", obj["name"], obj["local"], target,
                           {"on": obj["type"], "text": r["description"]})


def _relation_attrs(r: dict) -> dict[str, Any]:
    kind = r["relkind"]
    attrs: dict[str, Any] = {"owner": r["owner"]}
    if kind in "rpf":
        attrs.update(partitioned=kind == "p", unlogged=r["relpersistence"] == "u",
                     rls_enabled=r["relrowsecurity"], rls_forced=r["relforcerowsecurity"])
        if r["partkey"]:
            attrs["partition_key"] = r["partkey"]
        if r["parents"] and not r["relispartition"]:
            attrs["inherits"] = list(r["parents"])
    if kind in "vm":
        attrs["definition"] = r["viewdef"]
    if r["reloptions"]:
        attrs["options"] = sorted(r["reloptions"])
    return attrs


def _type_attrs(r: dict) -> dict[str, Any]:
    kind = TYPTYPES[r["typtype"]]
    attrs = {"kind": kind, "owner": r["owner"]}
    if kind == "enum":
        attrs["values"] = list(r["labels"])
    elif kind == "domain":
        attrs.update(base=r["base"], not_null=r["typnotnull"], default=r["dflt"])
    elif kind == "composite":
        attrs["attributes"] = list(r["attributes"])
    elif kind == "range":
        attrs["subtype"] = r["subtype"]
    return attrs
