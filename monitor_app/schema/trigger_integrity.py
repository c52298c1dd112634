"""Is the installed event trigger still exactly what dbmon installed?

The catalogue says who owns the `_dbmon` schema and the function, whether the function is still
SECURITY INVOKER with dbmon's body and no settings, who may use them, whether anything else sits
in `_dbmon`, and whether the event trigger still exists, is enabled and calls that function.
What earlier releases installed besides (their triggers, the signed releases' sender and key
table), if still there exactly as they installed it, is reported as left from an earlier
release (an install drops it); changed, it is reported like any other deviation. Every deviation
is a problem worded for an operator. The fingerprint covers the row versions read, so a new
tampering is a new fingerprint while an unchanged one is recognised on the next check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from monitor_app.schema.event_trigger import (EARLIER_KEY_TABLE, EARLIER_SENDER, EARLIER_TRIGGERS, FUNCTION,
                                              FUNCTION_BODY, SEARCH_PATH, TRIGGERS, pinned_search_path)
from monitor_app.schema.postgres_snapshot import DBMON_SCHEMA

MAX_LISTED = 10  # names come from whoever created the objects: keep messages short
# The events the triggers of earlier releases fired on, to tell a leftover from a tampered one.
EARLIER_EVENTS = {"dbmon_schema_ddl_end": "ddl_command_end", "dbmon_schema_sql_drop": "sql_drop"}
# The sender of the last signed release, exactly as it installed it; any other is reported.
EARLIER_SENDER_SETTINGS = [f"search_path={SEARCH_PATH}"]
EARLIER_SENDER_BODY_SHA256 = "b586ca629c2137102c60a8e758d42382f53c75f11633939e80e7590167ec23ad"
ENABLED = {"O": "enabled", "A": "always enabled", "R": "enabled only in replica sessions", "D": "disabled"}


@dataclass
class TriggerState:
    present: bool = False       # anything of dbmon's trigger exists
    complete: bool = False      # schema, function and trigger exist
    owner: str | None = None
    problems: list[str] = field(default_factory=list)
    fingerprint: str = ""
    body_sha256: str | None = None

    @property
    def intact(self) -> bool:
        return self.complete and not self.problems


def foreign_objects(cur) -> list[str]:
    """`_dbmon` and anything in it that the current role does not own."""
    cur.execute("""
        SELECT 'schema ' || n.nspname, pg_get_userbyid(n.nspowner) FROM pg_namespace n
         WHERE n.nspname = %(s)s AND n.nspowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
        UNION ALL
        SELECT 'function ' || p.oid::regprocedure::text, pg_get_userbyid(p.proowner)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = %(s)s AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
        UNION ALL
        SELECT 'relation ' || c.oid::regclass::text, pg_get_userbyid(c.relowner)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %(s)s AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
        ORDER BY 1""", {"s": DBMON_SCHEMA})
    rows = cur.fetchall()
    cur.execute("SELECT current_user")
    me = cur.fetchone()[0]
    found = [f"{what} is owned by {owner}, not by {me}" for what, owner in rows[:MAX_LISTED]]
    if len(rows) > MAX_LISTED:
        found.append(f"and {len(rows) - MAX_LISTED} more")
    return found


def extra_objects(cur) -> list[str]:
    """What sits in `_dbmon` besides the function and the signed releases' sender and key table
    (which an install drops): nothing else belongs there, and snapshots do not look there.
    Every object in a schema depends on it, except those that belong to another object (a
    table's row type, an array type)."""
    cur.execute("""
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_depend d
          JOIN pg_namespace n ON n.oid = d.refobjid
         WHERE d.refclassid = 'pg_namespace'::regclass AND n.nspname = %(s)s AND d.deptype = 'n'
           AND NOT coalesce(d.classid = 'pg_proc'::regclass
                            AND d.objid IN (to_regprocedure(%(f)s || '()'), to_regprocedure(%(g)s)), false)
           AND NOT coalesce(d.classid = 'pg_class'::regclass AND d.objid = to_regclass(%(k)s)
                            AND (SELECT c.relkind FROM pg_class c WHERE c.oid = d.objid) = 'r', false)
         ORDER BY 1""", {"s": DBMON_SCHEMA, "f": FUNCTION, "g": EARLIER_SENDER, "k": EARLIER_KEY_TABLE})
    rows = [r[0] for r in cur.fetchall()]
    found = [f"{what} is not part of dbmon's install" for what in rows[:MAX_LISTED]]
    if len(rows) > MAX_LISTED:
        found.append(f"and {len(rows) - MAX_LISTED} more")
    return found


def foreign_grants(cur) -> list[tuple[str, str, str]]:
    """(object kind, object, grantee) for every privilege on dbmon's objects held by a non-owner."""
    cur.execute("""
        SELECT 'SCHEMA', %(s)s, a.grantee FROM pg_namespace n,
               aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
         WHERE n.nspname = %(s)s AND a.grantee <> n.nspowner
        UNION ALL
        SELECT 'FUNCTION', %(f)s || '()', a.grantee FROM pg_proc p,
               aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
         WHERE p.oid = to_regprocedure(%(f)s || '()') AND a.grantee <> p.proowner""",
                {"s": DBMON_SCHEMA, "f": FUNCTION})
    found = []
    for kind, obj, grantee in cur.fetchall():
        if grantee == 0:
            found.append((kind, obj, "PUBLIC"))
        else:
            cur.execute("SELECT pg_get_userbyid(%s)", (grantee,))
            found.append((kind, obj, cur.fetchone()[0]))
    return sorted(set(found))


def _rows(cur, query: str, params) -> list[dict]:
    cur.execute(query, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def inspect(conn) -> TriggerState:
    with pinned_search_path(conn), conn.cursor() as cur:
        schema = _rows(cur, "SELECT n.oid, pg_get_userbyid(n.nspowner) AS owner, r.rolsuper, n.xmin::text "
                            "FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = %s",
                       (DBMON_SCHEMA,))
        function, sender = (_rows(cur, "SELECT p.oid, pg_get_userbyid(p.proowner) AS owner, p.prosecdef, "
                                       "p.proconfig, p.prosrc, l.lanname, p.xmin::text FROM pg_proc p JOIN "
                                       "pg_language l ON l.oid = p.prolang WHERE p.oid = to_regprocedure(%s)",
                                  (signature,)) for signature in (FUNCTION + "()", EARLIER_SENDER))
        key = _rows(cur, "SELECT pg_get_userbyid(c.relowner) AS owner, c.relkind, c.xmin::text FROM pg_class c "
                         "WHERE c.oid = to_regclass(%s)", (EARLIER_KEY_TABLE,))
        triggers = {r["evtname"]: r for r in _rows(
            cur, "SELECT evtname, evtevent, pg_get_userbyid(evtowner) AS owner, evtfoid, evtenabled, "
                 "evttags::text, xmin::text FROM pg_event_trigger WHERE evtname = ANY(%s)",
            ([*TRIGGERS, *EARLIER_TRIGGERS],))}
        grants = foreign_grants(cur) if schema else []
        extras = extra_objects(cur) if schema else []
    state = TriggerState(present=bool(schema or function or sender or triggers),
                         complete=bool(schema and function and set(TRIGGERS) <= set(triggers)))
    observed = {"schema": schema, "function": function, "sender": sender, "key": key, "triggers": triggers,
                "grants": grants, "extras": extras}
    state.fingerprint = hashlib.sha256(json.dumps(observed, sort_keys=True, default=str).encode()).hexdigest()
    if not state.present:
        return state
    state.owner = schema[0]["owner"] if schema else None
    if function:
        state.body_sha256 = hashlib.sha256(function[0]["prosrc"].encode()).hexdigest()
    state.problems = _problems(schema, function, triggers, grants) + _leftover_problems(schema, sender, key) + extras
    return state


def _problems(schema, function, triggers, grants) -> list[str]:
    """Every way the install differs from what dbmon creates, one check per object of the install."""
    if not schema:
        return [f"schema {DBMON_SCHEMA} is missing"]
    owner = schema[0]["owner"]
    problems = []
    if not schema[0]["rolsuper"]:
        problems.append(f"schema {DBMON_SCHEMA} is owned by {owner}, who is not a superuser")
    problems += _function_problems(function, FUNCTION + "()", owner)
    function_oid = function[0]["oid"] if function else None
    for name, event in TRIGGERS.items():
        problems += _trigger_problems(name, event, triggers.get(name), function_oid, owner)
    for name in EARLIER_TRIGGERS:
        if name in triggers:
            problems += (_trigger_problems(name, EARLIER_EVENTS[name], triggers[name], function_oid, owner)
                         or [earlier_release(name)])
    problems.extend(f"{grantee} holds privileges on {kind.lower()} {obj}" for kind, obj, grantee in grants[:MAX_LISTED])
    if len(grants) > MAX_LISTED:
        problems.append(f"and {len(grants) - MAX_LISTED} more holders of privileges")
    return problems


def earlier_release(name: str, kind: str = "event trigger") -> str:
    return f"{kind} {name} is left from an earlier release"


def settings_problem(name: str, found: list[str] | None, wanted: list[str]) -> str:
    return f"function {name} has settings {found or 'none'}, not {', '.join(wanted) or 'none'}"


def _function_problems(function, name: str, owner: str) -> list[str]:
    if not function:
        return [f"function {name} is missing"]
    fn, problems = function[0], []
    if fn["owner"] != owner:
        problems.append(f"function {name} is owned by {fn['owner']}, not by {owner}")
    if fn["prosecdef"]:
        problems.append(f"function {name} is SECURITY DEFINER, not SECURITY INVOKER")
    if fn["proconfig"]:
        problems.append(settings_problem(name, fn["proconfig"], []))
    if fn["lanname"] != "plpgsql" or fn["prosrc"] != FUNCTION_BODY:
        problems.append(f"function {name} body is not dbmon's")
    return problems


def _leftover_problems(schema, sender, key) -> list[str]:
    """The signed releases' sender and key table: left over when exactly as installed, owned by
    the schema's owner; otherwise changed since, which is reported as such."""
    if not schema:
        return []
    owner, problems = schema[0]["owner"], []
    if sender:
        fn = sender[0]
        if fn["owner"] != owner:
            problems.append(f"function {EARLIER_SENDER} is owned by {fn['owner']}, not by {owner}")
        elif (fn["prosecdef"] and (fn["proconfig"] or []) == EARLIER_SENDER_SETTINGS and fn["lanname"] == "plpgsql"
              and hashlib.sha256(fn["prosrc"].encode()).hexdigest() == EARLIER_SENDER_BODY_SHA256):
            problems.append(earlier_release(EARLIER_SENDER, "function"))
        else:
            problems.append(f"function {EARLIER_SENDER} is not the sender of an earlier release")
    if key:
        if key[0]["owner"] != owner:
            problems.append(f"table {EARLIER_KEY_TABLE} is owned by {key[0]['owner']}, not by {owner}")
        elif key[0]["relkind"] == "r":
            problems.append(earlier_release(EARLIER_KEY_TABLE, "table"))
    return problems


def _trigger_problems(name: str, event: str, trig: dict | None, function_oid, owner: str) -> list[str]:
    if trig is None:
        return [f"event trigger {name} is missing"]
    problems = []
    if trig["evtenabled"] not in ("O", "A"):
        problems.append(f"event trigger {name} is {ENABLED.get(trig['evtenabled'], trig['evtenabled'])}")
    if trig["evtevent"] != event:
        problems.append(f"event trigger {name} fires on {trig['evtevent']}, not {event}")
    if trig["evttags"]:
        problems.append(f"event trigger {name} is limited to tags {trig['evttags']}")
    if function_oid is None or trig["evtfoid"] != function_oid:
        problems.append(f"event trigger {name} does not call {FUNCTION}()")
    if trig["owner"] != owner:
        problems.append(f"event trigger {name} is owned by {trig['owner']}, not by {owner}")
    return problems

