"""Judge catalogue facts: `evaluate(facts, release_list, now)` -> findings and what was not checked.

Pure: no I/O, so every rule here is tested with plain dicts. A finding's `id` is stable across
runs (role findings carry the role's name), which is what lets the check report only changes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from datetime import datetime

from monitor_app.posture.releases import ReleaseList, version_key

_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_MAX_LISTED = 10
_MAX_NAME = 200  # keeps a finding id within its 255-character column whatever the facts say


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str  # warning | critical
    title: str
    detail: str
    remediation: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Posture:
    findings: list[Finding] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)


def evaluate(facts: dict, releases: ReleaseList, now: datetime) -> Posture:
    result = Posture(not_checked=dict(facts.get("not_checked") or {}))
    if facts.get("hba_rules") is not None:
        result.findings += _hba(facts["hba_rules"])
    if facts.get("ssl") == "off" and _reachable_from_other_hosts(facts.get("listen_addresses")):
        result.findings.append(Finding(
            "ssl_off_remote", "critical", "SSL is off on a server reachable from other hosts",
            f"ssl = off and listen_addresses = '{facts.get('listen_addresses')}': passwords and data cross the "
            "network in clear text.",
            "Set ssl = on with ssl_cert_file and ssl_key_file, reload, and use hostssl rules in pg_hba.conf; "
            "or listen on loopback only."))
    result.findings += _passwords(facts)
    result.findings += _roles(facts.get("privileged_roles") or [])
    if facts.get("public_create"):
        result.findings.append(Finding(
            "public_schema_create", "warning", "Every role may create objects in schema public",
            "The ACL of schema public grants CREATE to PUBLIC (the default before PostgreSQL 15): any role can "
            "plant functions or operators that other roles' unqualified names resolve to (CVE-2018-1058).",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC; grant CREATE to the roles that own the application's objects."))
    result.findings += _version(facts, releases, now, result.not_checked)
    if facts.get("data_directory") is not None:
        result.findings += _data_directory(facts["data_directory"])
    return result


# -- pg_hba.conf ---------------------------------------------------------------------------

def _scope(rule: dict) -> str:
    """local (Unix socket), loopback, remote, or world (any address)."""
    if rule["type"] == "local":
        return "local"
    address, netmask = rule.get("address"), rule.get("netmask")
    if address == "all":
        return "world"
    if address in ("samehost", "localhost"):
        return "loopback"
    try:
        # The view gives a netmask ('255.0.0.0', '::'); ip_network reads only IPv4 masks, so count bits.
        prefix = f"/{bin(int(ipaddress.ip_address(netmask))).count('1')}" if netmask else ""
        network = ipaddress.ip_network(f"{address}{prefix}", strict=False)
    except ValueError:
        return "remote"  # samenet, a host name, a domain suffix
    if network.prefixlen == 0:
        return "world"
    if any(network.version == lo.version and network.subnet_of(lo) for lo in _LOOPBACK):
        return "loopback"
    return "remote"


def _describe_rules(rules: list[dict]) -> str:
    parts = []
    for r in rules[:_MAX_LISTED]:
        where = "" if r["type"] == "local" else " " + str(r.get("address")) + (f"/{r['netmask']}" if r.get("netmask") else "")
        parts.append(f"line {r['line_number']}: {r['type']} {','.join(r['database'])} {','.join(r['user_name'])}"
                     f"{where} {r['auth_method']}")
    more = f" (and {len(rules) - _MAX_LISTED} more)" if len(rules) > _MAX_LISTED else ""
    return "; ".join(parts) + more


def _hba(rules: list[dict]) -> list[Finding]:
    trust_remote = [r for r in rules if r["auth_method"] == "trust" and _scope(r) in ("remote", "world")]
    trust_local = [r for r in rules if r["auth_method"] == "trust" and _scope(r) in ("local", "loopback")]
    open_to_all = [r for r in rules if r["auth_method"] not in ("trust", "reject") and _scope(r) == "world"]
    found = []
    if trust_remote:
        found.append(Finding(
            "hba_trust_remote", "critical", "pg_hba.conf trusts connections from other hosts",
            "Anyone who can reach the port logs in as any role without a password. pg_hba.conf " + _describe_rules(trust_remote),
            "Replace trust with scram-sha-256 (or cert) on these lines and reload (SELECT pg_reload_conf())."))
    if trust_local:
        found.append(Finding(
            "hba_trust_local", "warning", "pg_hba.conf trusts local connections",
            "Any user or process on the database host logs in as any role, superuser included. pg_hba.conf "
            + _describe_rules(trust_local),
            "Use peer for local socket connections and scram-sha-256 for loopback ones, then reload."))
    if open_to_all:
        found.append(Finding(
            "hba_open_to_all_addresses", "warning", "pg_hba.conf accepts logins from any address",
            "Password guessing is open to the whole network. pg_hba.conf " + _describe_rules(open_to_all),
            "Restrict these lines to the application's and administrators' networks."))
    return found


def _reachable_from_other_hosts(listen: str | None) -> bool:
    for entry in (listen or "").split(","):
        entry = entry.strip()
        if not entry or entry == "localhost":
            continue
        try:
            if ipaddress.ip_address(entry).is_loopback:
                continue
        except ValueError:
            pass  # '*' or a host name
        return True
    return False


# -- passwords and roles -------------------------------------------------------------------

def _passwords(facts: dict) -> list[Finding]:
    found = []
    if facts.get("password_encryption") == "md5":
        found.append(Finding(
            "password_encryption_md5", "warning", "New passwords are stored as MD5",
            "password_encryption = md5: an MD5 hash (or a sniffed md5 exchange) is enough to log in as the role.",
            "Set password_encryption = 'scram-sha-256', reload, then reset each role's password."))
    for name in (str(n)[:_MAX_NAME] for n in facts.get("md5_roles") or []):
        found.append(Finding(
            f"md5_role_password:{name}", "warning", f"Role {name} has an MD5 password",
            f"The stored password of login role {name!r} is an MD5 hash, which works as a password itself.",
            f"With password_encryption = 'scram-sha-256', set the password again: ALTER ROLE ... PASSWORD '...' "
            f"(or \\password in psql) for {name!r}."))
    return found


def _roles(roles: list[dict]) -> list[Finding]:
    found = []
    for role in roles:
        name = str(role["name"])[:_MAX_NAME]
        if role.get("superuser"):
            found.append(Finding(
                f"superuser_role:{name}", "critical", f"Login role {name} is a superuser",
                f"{name!r} can log in and is a superuser: whoever holds its password controls the server and, "
                "through COPY ... PROGRAM, the operating system account running it.",
                f"Give {name!r} only the privileges it needs (ALTER ROLE ... NOSUPERUSER) and keep superuser "
                "for break-glass administration."))
        elif role.get("createrole"):
            found.append(Finding(
                f"createrole_role:{name}", "warning", f"Login role {name} has CREATEROLE",
                f"{name!r} can create roles and, before PostgreSQL 16, grant itself membership in almost any role.",
                f"ALTER ROLE ... NOCREATEROLE for {name!r} unless it administers roles."))
    return found


# -- version -------------------------------------------------------------------------------

def _version_text(num: int) -> tuple[str, int, str]:
    major, rest = divmod(num, 10000)
    if major < 10:
        minor_branch, minor = divmod(rest, 100)
        branch = f"{major}.{minor_branch}"
        return branch, minor, f"{branch}.{minor}"
    return str(major), rest, f"{major}.{rest}"


def _version(facts: dict, releases: ReleaseList, now: datetime, not_checked: dict) -> list[Finding]:
    num = facts.get("server_version_num")
    if not num:
        return []
    branch, minor, text = _version_text(int(num))
    listed = f"{releases.describe()}, {releases.age_days(now.date())} days old"
    known = releases.branches.get(branch)
    if known is None:
        newest = max(releases.branches, key=version_key)
        if version_key(branch) > version_key(newest):
            not_checked["version"] = f"branch {branch} is newer than the {listed}; point DBMON_POSTURE_RELEASE_LIST at a newer one"
            return []
        return [_end_of_life(text, branch, f"branch {branch} is older than every branch in the {listed}")]
    if known.end_of_life <= now.date():
        return [_end_of_life(text, branch, f"branch {branch} reached end of life on {known.end_of_life} ({listed})")]
    behind = known.latest_minor - minor
    if behind > 1:
        return [Finding(
            "minor_release_behind", "warning", f"PostgreSQL {text} is {behind} minor releases behind",
            f"The server runs {text}; the latest {branch}.x is {known.latest} (released {known.released}, "
            f"{listed}). Minor releases carry security and data-corruption fixes.",
            f"Upgrade to {known.latest}: same branch, binary compatible, a restart is enough.")]
    return []


def _end_of_life(text: str, branch: str, why: str) -> Finding:
    return Finding(
        "major_end_of_life", "warning", f"PostgreSQL {branch} is no longer supported",
        f"The server runs {text}; {why}. It no longer receives security fixes.",
        "Plan a major upgrade (pg_upgrade or logical replication) to a supported branch.")


# -- data directory ------------------------------------------------------------------------

def _data_directory(info: dict) -> list[Finding]:
    mode = int(info["mode"])
    extra = mode & 0o7777 & ~0o750
    if not extra:
        return []
    writable = mode & 0o022
    return [Finding(
        "data_directory_permissions", "critical" if writable else "warning",
        "The data directory is " + ("writable" if writable else "readable") + " beyond its owner",
        f"{info['path']} has mode {mode:04o}; PostgreSQL expects 0700 (or 0750 for group read). "
        + ("Another account can replace files the server loads." if writable
           else "Other accounts can list it, and read any file whose mode allows."),
        f"chmod 0700 {info['path']} (or 0750 with a trusted backup group).")]
