"""Is the installed event trigger still exactly what dbmon installed?

The catalogue says who owns the `_dbmon` schema, the function and its key, whether the function
is still SECURITY DEFINER with the pinned search_path and dbmon's body, who may use them, and
whether both event triggers still exist, are enabled and call that function. Every deviation is
a problem worded for an operator. The fingerprint covers the row versions read, so a new
tampering is a new fingerprint while an unchanged one is recognised on the next check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from monitor_app.schema.event_trigger import (FUNCTION, FUNCTION_BODY, KEY_TABLE, SEARCH_PATH, TRIGGERS,
                                              pinned_search_path)
from monitor_app.schema.postgres_snapshot import DBMON_SCHEMA

MAX_LISTED = 10  # names come from whoever created the objects: keep messages short
ENABLED = {"O": "enabled", "A": "always enabled", "R": "enabled only in replica sessions", "D": "disabled"}


@dataclass
class TriggerState:
    present: bool = False       # anything of dbmon's trigger exists
    complete: bool = False      # schema, key, function and both triggers exist
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


def foreign_grants(cur) -> list[tuple[str, str, str]]:
    """(object kind, object, grantee) for every privilege on dbmon's objects held by a non-owner."""
    cur.execute("""
        SELECT 'SCHEMA', %(s)s, a.grantee FROM pg_namespace n,
               aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
         WHERE n.nspname = %(s)s AND a.grantee <> n.nspowner
        UNION ALL
        SELECT 'FUNCTION', %(f)s || '()', a.grantee FROM pg_proc p,
               aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
         WHERE p.oid = to_regprocedure(%(f)s || '()') AND a.grantee <> p.proowner
        UNION ALL
        SELECT 'TABLE', %(k)s, a.grantee FROM pg_class c,
               aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
         WHERE c.oid = to_regclass(%(k)s) AND a.grantee <> c.relowner""",
                {"s": DBMON_SCHEMA, "f": FUNCTION, "k": KEY_TABLE})
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
        function = _rows(cur, "SELECT p.oid, pg_get_userbyid(p.proowner) AS owner, p.prosecdef, p.proconfig, "
                              "p.prosrc, l.lanname, p.xmin::text FROM pg_proc p JOIN pg_language l "
                              "ON l.oid = p.prolang WHERE p.oid = to_regprocedure(%s)", (FUNCTION + "()",))
        key = _rows(cur, "SELECT pg_get_userbyid(c.relowner) AS owner, c.relkind, c.xmin::text FROM pg_class c "
                         "WHERE c.oid = to_regclass(%s)", (KEY_TABLE,))
        triggers = {r["evtname"]: r for r in _rows(
            cur, "SELECT evtname, evtevent, pg_get_userbyid(evtowner) AS owner, evtfoid, evtenabled, "
                 "evttags::text, xmin::text FROM pg_event_trigger WHERE evtname = ANY(%s)", (list(TRIGGERS),))}
        grants = foreign_grants(cur) if schema else []
    state = TriggerState(present=bool(schema or function or triggers),
                         complete=bool(schema and function and key and len(triggers) == len(TRIGGERS)))
    observed = {"schema": schema, "function": function, "key": key, "triggers": triggers, "grants": grants}
    state.fingerprint = hashlib.sha256(json.dumps(observed, sort_keys=True, default=str).encode()).hexdigest()
    if not state.present:
        return state
    state.owner = schema[0]["owner"] if schema else None
    if function:
        state.body_sha256 = hashlib.sha256(function[0]["prosrc"].encode()).hexdigest()
    state.problems = _problems(schema, function, key, triggers, grants)
    return state


def _problems(schema, function, key, triggers, grants) -> list[str]:
    """Every way the install differs from what dbmon creates, one check per object of the install."""
    if not schema:
        return [f"schema {DBMON_SCHEMA} is missing"]
    owner = schema[0]["owner"]
    problems = []
    if not schema[0]["rolsuper"]:
        problems.append(f"schema {DBMON_SCHEMA} is owned by {owner}, who is not a superuser")
    problems += _function_problems(function, owner)
    problems += _key_table_problems(key, owner)
    function_oid = function[0]["oid"] if function else None
    for name, event in TRIGGERS.items():
        problems += _trigger_problems(name, event, triggers.get(name), function_oid, owner)
    problems.extend(f"{grantee} holds privileges on {kind.lower()} {obj}" for kind, obj, grantee in grants[:MAX_LISTED])
    if len(grants) > MAX_LISTED:
        problems.append(f"and {len(grants) - MAX_LISTED} more holders of privileges")
    return problems


def _function_problems(function, owner: str) -> list[str]:
    if not function:
        return [f"function {FUNCTION}() is missing"]
    fn, problems = function[0], []
    if fn["owner"] != owner:
        problems.append(f"function {FUNCTION}() is owned by {fn['owner']}, not by {owner}")
    if not fn["prosecdef"]:
        problems.append(f"function {FUNCTION}() is SECURITY INVOKER, not SECURITY DEFINER")
    if (fn["proconfig"] or []) != [f"search_path={SEARCH_PATH}"]:
        problems.append(f"function {FUNCTION}() has settings {fn['proconfig'] or 'none'}, "
                        f"not search_path={SEARCH_PATH}")
    if fn["lanname"] != "plpgsql" or fn["prosrc"] != FUNCTION_BODY:
        problems.append(f"function {FUNCTION}() body is not dbmon's")
    return problems


def _key_table_problems(key, owner: str) -> list[str]:
    if not key:
        return [f"table {KEY_TABLE} is missing"]
    if key[0]["owner"] != owner:
        return [f"table {KEY_TABLE} is owned by {key[0]['owner']}, not by {owner}"]
    if key[0]["relkind"] != "r":
        return [f"{KEY_TABLE} is not a plain table"]
    return []


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

