"""Read what a posture judgement needs from a PostgreSQL server's catalogue, and nothing else.

Each fact is read on its own (autocommit), so a privilege the monitoring role lacks costs
only that fact: it is left as None and `not_checked` says which privilege would allow it.
Everything read here comes from the monitored server and is treated as untrusted data.
"""

from __future__ import annotations

import ipaddress
import os
import stat

from psycopg2 import errors

NEEDS = {
    "pg_hba": "needs superuser, or SELECT on pg_hba_file_rules and EXECUTE on function pg_hba_file_rules()",
    "role_passwords": "needs superuser (stored password hashes are only in pg_authid)",
    "data_directory": "needs superuser or pg_read_all_settings (included in pg_monitor) to read data_directory",
}
MAX_NAME = 200  # role names are at most 63 bytes in PostgreSQL; anything longer is not from a real server
MAX_ROWS = 500

_HBA = """SELECT line_number, type, database, user_name, address, netmask, auth_method
            FROM pg_hba_file_rules WHERE error IS NULL ORDER BY line_number"""
_MD5_ROLES = "SELECT rolname FROM pg_authid WHERE rolcanlogin AND rolpassword LIKE 'md5%' ORDER BY 1"
# The bootstrap superuser (oid 10) and the role dbmon logs in as are expected to be privileged.
_PRIVILEGED = """SELECT rolname, rolsuper, rolcreaterole FROM pg_roles
                  WHERE rolcanlogin AND (rolsuper OR rolcreaterole) AND oid <> 10 AND rolname <> current_user
                  ORDER BY 1"""
# 'public' as the role argument means the PUBLIC pseudo-role, i.e. the schema's ACL grants it to everyone.
# CASE, not AND: the privilege function raises for a dropped schema and AND does not short-circuit.
_PUBLIC_CREATE = """SELECT CASE WHEN to_regnamespace('public') IS NULL THEN false
                            ELSE has_schema_privilege('public', 'public', 'CREATE') END"""


class _Denied(Exception):
    pass


def _query(cur, sql: str) -> list[tuple]:
    try:
        cur.execute(sql)
    except (errors.InsufficientPrivilege, errors.UndefinedTable, errors.UndefinedFunction) as exc:
        raise _Denied(str(exc).strip()) from None
    return cur.fetchmany(MAX_ROWS)


def _setting(cur, name: str) -> str | None:
    rows = _query(cur, f"SELECT current_setting('{name}')")
    return rows[0][0] if rows else None


def _name(value) -> str:
    return str(value)[:MAX_NAME]


def _names(value) -> list[str]:
    return [_name(v) for v in (value or [])][:50]


def collect(conn, *, same_host: bool) -> dict:
    """Facts as plain JSON-able values. `same_host`: dbmon runs where the server does, so the
    data directory reported by the server is the one this process can stat."""
    conn.autocommit = True
    facts: dict = {"not_checked": {}}
    skipped = facts["not_checked"]
    with conn.cursor() as cur:
        facts["server_version_num"] = int(_setting(cur, "server_version_num"))
        facts["server_version"] = _name(_setting(cur, "server_version"))
        for name in ("ssl", "listen_addresses", "password_encryption"):
            facts[name] = _name(_setting(cur, name))
        try:
            facts["hba_rules"] = [
                {"line_number": line, "type": _name(kind), "database": _names(dbs), "user_name": _names(users),
                 "address": _name(address) if address is not None else None,
                 "netmask": _name(netmask) if netmask is not None else None, "auth_method": _name(method)}
                for line, kind, dbs, users, address, netmask, method in _query(cur, _HBA)]
        except _Denied:
            facts["hba_rules"] = None
            skipped["pg_hba"] = NEEDS["pg_hba"]
        try:
            facts["md5_roles"] = [_name(r[0]) for r in _query(cur, _MD5_ROLES)]
        except _Denied:
            facts["md5_roles"] = None
            skipped["role_passwords"] = NEEDS["role_passwords"]
        facts["privileged_roles"] = [{"name": _name(n), "superuser": bool(su), "createrole": bool(cr)}
                                     for n, su, cr in _query(cur, _PRIVILEGED)]
        facts["public_create"] = bool(_query(cur, _PUBLIC_CREATE)[0][0])
        facts["data_directory"] = None
        if not same_host:
            skipped["data_directory"] = "dbmon does not run on the same host as the server, so it cannot stat the data directory"
        else:
            try:
                path = _setting(cur, "data_directory")
            except _Denied:
                skipped["data_directory"] = NEEDS["data_directory"]
            else:
                _stat_data_directory(path, facts, skipped)
    return facts


def _stat_data_directory(path: str, facts: dict, skipped: dict) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        skipped["data_directory"] = f"{_name(path)} does not exist on this host (a server in a container or VM?)"
        return
    except OSError as exc:
        skipped["data_directory"] = f"cannot stat {_name(path)}: {exc.strerror}"
        return
    if not stat.S_ISDIR(st.st_mode):
        skipped["data_directory"] = f"{_name(path)} is not a directory on this host"
        return
    facts["data_directory"] = {"path": _name(path), "mode": stat.S_IMODE(st.st_mode)}


def is_local_host(host: str | None) -> bool:
    """Whether a connection's host is this machine: a Unix socket directory or a loopback name."""
    if not host or host.startswith("/"):
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
