"""Accounts and privileges that touch one MySQL or MariaDB database, for its snapshot.

Privileges come from information_schema: `SCHEMA_PRIVILEGES` (including grants on wildcard
patterns such as `app\\_%`.* that match the database), `TABLE_PRIVILEGES`, `COLUMN_PRIVILEGES`,
and `USER_PRIVILEGES` for global ones (on *.*, which reach every database). Routine grants live
only in `mysql.procs_priv`. Each privileged object gets one `privilege` object (key `acl:` + the
object's key, as on PostgreSQL) listing `'user'@'host' PRIVILEGE` entries, `GRANT OPTION` once
per grantee that holds it.

Accounts are the grantees of those privileges plus every account with a global privilege
beyond USAGE. Their attributes (authentication plugin, locked, password expired, TLS
requirement, resource limits) come from `mysql.global_priv` (MariaDB 10.4+) or `mysql.user`,
selected column by column: the password hash is never read. information_schema shows an
unprivileged user only its own grants, and the mysql schema may not be readable at all; the
snapshot then holds what was visible and says so in its `accounts` field.
"""

from __future__ import annotations

import pymysql

from monitor_app.schema.mysql_catalogue import bounded
from monitor_app.schema.mysql_connection import ACCESS_ERRORS, error_code
from monitor_app.schema.snapshot_format import add_object

Q_GLOBAL = "SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES LIMIT %s"
# `%s LIKE TABLE_SCHEMA`: a database-level grant may name a pattern; backslash escapes as in GRANT.
Q_SCHEMA = """SELECT GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES
WHERE TABLE_SCHEMA = %s OR %s LIKE TABLE_SCHEMA LIMIT %s"""
Q_TABLE = """SELECT GRANTEE, TABLE_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES
WHERE TABLE_SCHEMA = %s LIMIT %s"""
Q_COLUMN = """SELECT GRANTEE, TABLE_NAME, COLUMN_NAME, PRIVILEGE_TYPE, IS_GRANTABLE
FROM information_schema.COLUMN_PRIVILEGES WHERE TABLE_SCHEMA = %s LIMIT %s"""
Q_ROUTINE = """SELECT User, Host, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv WHERE Db = %s LIMIT %s"""
# Named keys only: `authentication_string` (the hash) is never selected.
Q_ACCOUNTS_MARIADB = """SELECT User, Host, JSON_VALUE(Priv, '$.plugin') AS plugin,
       JSON_VALUE(Priv, '$.account_locked') AS account_locked,
       JSON_VALUE(Priv, '$.password_last_changed') = '0' AS password_expired,
       JSON_VALUE(Priv, '$.ssl_type') AS ssl_type, JSON_VALUE(Priv, '$.max_questions') AS max_questions,
       JSON_VALUE(Priv, '$.max_updates') AS max_updates, JSON_VALUE(Priv, '$.max_connections') AS max_connections,
       JSON_VALUE(Priv, '$.max_user_connections') AS max_user_connections, JSON_VALUE(Priv, '$.is_role') AS is_role
FROM mysql.global_priv LIMIT %s"""
Q_ACCOUNTS_MYSQL = """SELECT User, Host, plugin, account_locked, password_expired, ssl_type, max_questions, max_updates,
       max_connections, max_user_connections, 'N' AS is_role FROM mysql.user LIMIT %s"""
SSL_TYPES = {"0": "", "1": "ANY", "2": "X509", "3": "SPECIFIED"}  # MariaDB stores ssl_type as a number


def grantee(user: str, host: str) -> str:
    return "'" + user.replace("'", "\\'") + "'@'" + host.replace("'", "\\'") + "'"


def _grantee_of(entry: str) -> str:
    """`'u'@'h' SELECT` -> `'u'@'h'` (the grantee ends at its last quote)."""
    return entry[:entry.rfind("'") + 1]


def privilege_entries(pairs: list[tuple[str, str, bool]]) -> list[str]:
    """(grantee, privilege, grantable) rows as sorted entries, GRANT OPTION once per grantee."""
    entries = {f"{who} {priv}" for who, priv, _ in pairs if priv != "USAGE"}
    entries |= {f"{who} GRANT OPTION" for who, _, grantable in pairs if grantable}
    return sorted(entries)


def _optional(cur, kind: str, sql: str, args: tuple, limit: int) -> list[dict] | None:
    """The rows, or None when this account may not read them (or the table does not exist here)."""
    try:
        return bounded(cur, kind, sql, args, limit)
    except pymysql.MySQLError as exc:
        if error_code(exc) in ACCESS_ERRORS or error_code(exc) == 1146:  # denied, or no such table
            return None
        raise


class GrantReader:
    """Adds `privilege` and `user` objects to a snapshot whose tables, columns and routines are in."""

    def __init__(self, cur, snap: dict, database: str, limit: int, *, mariadb: bool):
        self.cur, self.snap, self.database, self.limit, self.mariadb = cur, snap, database, limit, mariadb
        self.objects = snap["objects"]
        self.grantees: set[str] = set()

    def read(self) -> None:
        globals_ = self._global()
        self._schema()
        self._per_object(bounded(self.cur, "table grants", Q_TABLE, (self.database,), self.limit), "table",
                         lambda r: f"table:{r['TABLE_NAME']}")
        self._per_object(bounded(self.cur, "column grants", Q_COLUMN, (self.database,), self.limit), "column",
                         lambda r: f"col:{r['TABLE_NAME']}/{r['COLUMN_NAME']}")
        routine_grants = _optional(self.cur, "routine grants", Q_ROUTINE, (self.database,), self.limit)
        if routine_grants is not None:
            self._per_object(
                [{"GRANTEE": grantee(r["User"], r["Host"]), "PRIVILEGE_TYPE": priv.upper(), "IS_GRANTABLE": "NO",
                  "key": f"routine:{str(r['Routine_type']).lower()}:{r['Routine_name']}"}
                 for r in routine_grants for priv in str(r["Proc_priv"]).split(",") if priv],
                "routine", lambda r: r["key"])
        self.grantees |= {who for who, privs in globals_.items() if privs}
        self._accounts(globals_, routines_visible=routine_grants is not None)

    def _global(self) -> dict[str, list[str]]:
        """Each grantee's privileges on *.* (USAGE means none)."""
        by_grantee: dict[str, set[str]] = {}
        for r in bounded(self.cur, "global grants", Q_GLOBAL, (), self.limit):
            privileges = by_grantee.setdefault(r["GRANTEE"], set())
            if r["PRIVILEGE_TYPE"] != "USAGE":
                privileges.add(r["PRIVILEGE_TYPE"])
            if r["IS_GRANTABLE"] == "YES":
                privileges.add("GRANT OPTION")
        return {who: sorted(privileges) for who, privileges in by_grantee.items()}

    def _schema(self) -> None:
        found = bounded(self.cur, "database grants", Q_SCHEMA, (self.database, self.database), self.limit)
        pairs = []
        for r in found:
            # A grant on a pattern (`app\_%`) is named with it: revoking it is revoking that grant.
            via = "" if r["TABLE_SCHEMA"] == self.database else f" (on `{r['TABLE_SCHEMA']}`.*)"
            pairs.append((r["GRANTEE"], r["PRIVILEGE_TYPE"] + via, r["IS_GRANTABLE"] == "YES"))
        self._add("database", "database", pairs)

    def _per_object(self, found: list[dict], on: str, key_of) -> None:
        by_key: dict[str, list[tuple[str, str, bool]]] = {}
        for r in found:
            by_key.setdefault(key_of(r), []).append((r["GRANTEE"], r["PRIVILEGE_TYPE"], r["IS_GRANTABLE"] == "YES"))
        for key, pairs in by_key.items():
            self._add(key, on, pairs)

    def _add(self, key: str, on: str, pairs: list[tuple[str, str, bool]]) -> None:
        entries = privilege_entries(pairs)
        target = self.objects.get(key)
        if not entries or target is None:
            return
        self.grantees |= {_grantee_of(e) for e in entries}
        add_object(self.snap, f"acl:{key}", "privilege", target["name"], target["local"], key,
                   {"on": on, "grants": entries})

    def _accounts(self, globals_: dict[str, list[str]], *, routines_visible: bool) -> None:
        found = _optional(self.cur, "accounts", Q_ACCOUNTS_MARIADB if self.mariadb else Q_ACCOUNTS_MYSQL, (), self.limit)
        attributes = {grantee(r["User"], r["Host"]): r for r in found or []}
        self.snap["accounts"] = {"attributes_visible": found is not None, "routine_grants_visible": routines_visible}
        for who in sorted(self.grantees):
            attrs: dict = {"global_privileges": globals_.get(who, [])}
            r = attributes.get(who)
            if r is not None:
                attrs.update(_account_attrs(r))
            add_object(self.snap, f"user:{who}", "user", who, who, None, attrs)


def _account_attrs(r: dict) -> dict:
    def flag(value) -> bool:
        return str(value).lower() in ("y", "1", "true")

    def limit(value) -> int:
        try:
            return int(value or 0)
        except (TypeError, ValueError):
            return 0

    ssl_type = str(r["ssl_type"] or "")
    return {"plugin": r["plugin"] or None, "account_locked": flag(r["account_locked"]),
            "password_expired": flag(r["password_expired"]), "role": flag(r["is_role"]),
            "require_tls": SSL_TYPES.get(ssl_type, ssl_type) or None,
            # Sorted: a nested object must read the same from a file (sorted keys) and live.
            "limits": {k: limit(r[k]) for k in sorted(("max_questions", "max_updates", "max_connections",
                                                       "max_user_connections"))}}
