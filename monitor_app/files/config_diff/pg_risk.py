"""How risky a postgresql.conf change is.

The rubric, first match wins (values compared after normalisation; a removed parameter is
judged by the default it falls back to):

critical -- the change can lose data or open access:
    `fsync` or `full_page_writes` turned off; `ssl` turned off; `listen_addresses` now
    including `*`, `0.0.0.0` or `::`; `password_encryption` set to `md5`; `wal_level` lowered
    to `minimal`; `archive_mode` turned off, or `archive_command` / `archive_library` emptied
    while archiving was configured.
high -- the change is hard to undo or changes who or what runs in the server:
    `synchronous_commit` turned off (recent commits can be lost on a crash); `max_connections`,
    `shared_preload_libraries`, `data_directory`, `hba_file`, `ident_file`, `config_file`;
    any other change that needs a restart (context `postmaster`).
medium -- tuning with visible effect: any memory setting, durability (`fsync` and
    `full_page_writes` turned back on), checkpoints, WAL, vacuum and autovacuum, background
    writer, replication, and security-related settings (`ssl_*`, passwords,
    authentication).
low -- everything else: logging, statistics, planner costs, client defaults, unknown settings.
"""

from __future__ import annotations

from .pg_values import MEMORY_UNITS, unit_scale

# Defaults a removed setting falls back to, for the settings whose rule depends on the value.
DEFAULTS = {
    "fsync": "on", "full_page_writes": "on", "ssl": "off", "listen_addresses": "localhost",
    "password_encryption": "scram-sha-256", "wal_level": "replica", "archive_mode": "off",
    "archive_command": "", "archive_library": "", "synchronous_commit": "on",
}

HIGH_IMPACT = {
    "max_connections": "caps how many clients can connect; needs a restart",
    "shared_preload_libraries": "changes the code loaded into every server process; needs a restart",
    "data_directory": "points the server at another data directory",
    "hba_file": "points client authentication at another file",
    "ident_file": "points user-name mapping at another file",
    "config_file": "points the server at another configuration file",
}

_MEDIUM_PREFIXES = ("fsync", "full_page_writes", "checkpoint", "autovacuum", "vacuum", "wal_", "max_wal", "min_wal", "bgwriter", "ssl",
                    "password", "krb", "authentication", "effective_cache", "huge_pages", "max_worker",
                    "max_parallel", "archive", "restore_command", "primary_", "synchronous", "hot_standby")
_ALL_INTERFACES = ("*", "0.0.0.0", "::")  # nosec B104 - values a config is compared with, never bound


def assess(name: str, old: str | None, new: str | None, restart_required: bool | None,
           unit: str | None) -> tuple[str, str]:
    """(risk, reason) for one parameter's change; old/new are normalised display values or None."""
    before = old if old is not None else DEFAULTS.get(name)
    after = new if new is not None else DEFAULTS.get(name)
    critical = _critical(name, before, after)
    if critical:
        return "critical", critical
    if name == "synchronous_commit" and after == "off" and before != "off":
        return "high", "synchronous_commit off: commits acknowledged before they are durable can be lost on a crash"
    if name in HIGH_IMPACT:
        return "high", HIGH_IMPACT[name]
    if restart_required:
        return "high", "takes effect only after a server restart"
    scale = unit_scale(unit)
    if scale is not None and scale[0] is MEMORY_UNITS:
        return "medium", "memory sizing"
    if name.startswith(_MEDIUM_PREFIXES):
        return "medium", "durability, WAL, vacuum, replication or security tuning"
    return "low", "logging, planner or other low-impact setting"


def _critical(name: str, before: str | None, after: str | None) -> str | None:
    if name in ("fsync", "full_page_writes") and after == "off" and before != "off":
        return f"{name} off: a crash can corrupt the database"
    if name == "ssl" and after == "off" and before != "off":
        return "ssl off: connections are no longer encrypted"
    if name == "listen_addresses" and _all_interfaces(after) and not _all_interfaces(before):
        return "listen_addresses opened to all network interfaces"
    if name == "password_encryption" and after == "md5" and before != "md5":
        return "password_encryption md5: new passwords are stored with a weak hash"
    if name == "wal_level" and after == "minimal" and before != "minimal":
        return "wal_level minimal: no archiving, replication or point-in-time recovery"
    if name == "archive_mode" and after == "off" and before in ("on", "always"):
        return "archive_mode off: WAL is no longer archived; point-in-time recovery stops"
    if name in ("archive_command", "archive_library") and not after and before:
        return f"{name} emptied: WAL is no longer archived; point-in-time recovery stops"
    return None


def _all_interfaces(value: str | None) -> bool:
    if not value:
        return False
    return any(item.strip().strip("'\"") in _ALL_INTERFACES for item in value.split(","))
