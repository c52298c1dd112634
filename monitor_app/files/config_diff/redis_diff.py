"""Differences between two parsed redis.conf files, and how risky each is.

Arguments compare by meaning: memory amounts in Redis's units (1k = 1000, 1kb = 1024, m/mb,
g/gb; case-insensitive) against plain byte counts, yes/no in any case, `bind` addresses in any
order, `save` points as a set. Risk: `protected-mode no` or `requirepass` removed/emptied ->
critical, an enabled ACL user without a password -> critical, `bind` to all interfaces (or
removed: Redis then listens everywhere) -> high, renaming CONFIG, FLUSHALL or another
dangerous command -> medium, persistence, memory and credential changes -> medium, the rest
low. Redis's own CONFIG SET rules are not modelled, so `restart_required` is None.
"""

from __future__ import annotations

import re
from typing import Any

from .model import diff_values
from .redis import RedisSyntaxError, split_args

_MEMORY = re.compile(r"(-?\d+)(k|kb|m|mb|g|gb)?", re.IGNORECASE)
_UNIT_SIZES = {"": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
_ALL_INTERFACES = ("0.0.0.0", "*", "::", "-::*", "::*")  # nosec B104 - compared with, never bound
_DANGEROUS_COMMANDS = ("config", "flushall", "flushdb", "debug", "shutdown", "keys", "module", "acl", "eval")
_MEDIUM = ("save", "appendonly", "appendfsync", "maxmemory", "maxmemory-policy", "port", "dir", "dbfilename",
           "masterauth", "masteruser", "replicaof", "slaveof", "loadmodule", "include", "tls-port", "aclfile")


def canonical_args(value: str) -> tuple[str, ...]:
    try:
        args = split_args(value)
    except RedisSyntaxError:
        return (value,)
    out = []
    for arg in args:
        memory = _MEMORY.fullmatch(arg)
        if memory:
            out.append(str(int(memory[1]) * _UNIT_SIZES[(memory[2] or "").lower()]))
        elif arg.lower() in ("yes", "no"):
            out.append(arg.lower())
        else:
            out.append(arg)
    return tuple(out)


def canonical(parameter: str, value: Any) -> tuple[Any, str]:
    """(comparison key, display) of one entry's value."""
    if isinstance(value, list):
        items = [str(item) for item in value]
        if parameter == "save":
            # Save points are a set: order and repeats do not matter.
            key: Any = tuple(sorted(set(canonical_args(item) for item in items)))
            return key, "; ".join(items) if items else '""'
        return tuple(canonical_args(item) for item in items), "; ".join(items)
    text = str(value)
    args = canonical_args(text)
    if parameter == "bind":
        args = tuple(sorted(args))
    return args, _display(text)


def _display(text: str) -> str:
    # Units shown in lower case, as Redis's own config rewrite does.
    return re.sub(r"\b(\d+)([kmg]b?)\b", lambda m: m[1] + m[2].lower(), text, flags=re.IGNORECASE)


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    return diff_values(old, new, canonical, assess)


def assess(name: str, old: str | None, new: str | None) -> tuple[str, str]:
    if name == "protected-mode" and new is not None and new.lower() == "no":
        return "critical", "protected-mode no: an instance without a password accepts remote clients"
    if name == "requirepass" and (new is None or new == '""'):
        return "critical", "requirepass removed: the default user needs no password"
    if name.startswith("user ") and new is not None:
        rules = new.lower().split()
        if "nopass" in rules and "on" in rules:
            return "critical", "an enabled ACL user that needs no password"
        return "medium", "ACL user changed"
    if name == "bind" and (new is None or any(arg in _ALL_INTERFACES for arg in new.split())):
        return "high", "server listens on all network interfaces"
    if name.startswith("rename-command "):
        command = name.partition(" ")[2]
        if command in _DANGEROUS_COMMANDS:
            return "medium", f"renaming of the {command.upper()} command changed"
        return "low", "command renaming changed"
    if name in ("requirepass", "masterauth") or name in _MEDIUM or name.startswith(("client-output-buffer-limit",
                                                                                        "tls-", "maxmemory")):
        return "medium", "persistence, memory, replication or credential setting"
    return "low", "low-impact setting"
