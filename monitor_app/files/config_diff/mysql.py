"""my.cnf (MySQL and MariaDB option files): options per `[group]`, reported as `group.option`.

Option names are folded the way the server reads them: case-insensitive, `-` and `_` alike,
a `loose-` prefix dropped. Values lose surrounding quotes and take the option-file escapes
(\\b \\t \\n \\r \\s \\\\); `#` starts a comment outside quotes, `;` only at the start of a line.
`!include FILE` and `!includedir DIR` (its `*.cnf` files, in byte order so the result is
deterministic) resolve relative paths against the including file's directory. An included file
starts with no group, as in the server's reader, and the including file's group resumes after it.

Equivalent values compare equal: K/M/G/T/P/E suffixes (1024-based) against plain byte counts,
ON/TRUE/YES and a bare option against each other. Risks follow the brief's rubric, judged on
the value a removed option falls back to (MySQL 8 binds to `*` without `bind-address`).
"""

from __future__ import annotations

import re
from typing import Any

from .model import ParsedBuilder, diff_values
from .redaction import is_secret_name, redact, scrub_embedded
from .sources import ConfigSources

_SIZE = re.compile(r"(\d+)([KMGTPE])", re.IGNORECASE)
_SUFFIXES = ("E", "P", "T", "G", "M", "K")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "r": "\r", "s": " ", "\\": "\\", '"': '"', "'": "'"}
_BOOLEAN_OPTIONS = frozenset({"skip_networking", "skip_grant_tables", "require_secure_transport",
                              "skip_name_resolve", "local_infile", "skip_symbolic_links"})
_ALL_INTERFACES = ("0.0.0.0", "*", "::")  # nosec B104 - values a config is compared with, never bound
_MEDIUM_WORDS = ("buffer", "size", "cache", "innodb", "max_connections", "ssl", "tls", "log_bin", "datadir",
                 "port", "socket", "server_id", "gtid", "plugin", "password", "binlog", "secure")


def option_name(raw: str) -> str:
    name = raw.strip().lower().replace("-", "_")
    return name[len("loose_"):] if name.startswith("loose_") else name


def strip_comment(text: str) -> str:
    quote = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            return text[:index]
    return text


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), value)


class MysqlParser:
    def __init__(self, builder: ParsedBuilder, sources: ConfigSources, key: bytes) -> None:
        self.builder, self.sources, self.key = builder, sources, key
        self.effective: dict[str, dict[str, Any]] = {}

    def parse_text(self, text: str, file: str, directory: str | None, depth: int) -> None:
        group: str | None = None
        for number, raw_line in enumerate(text.split("\n"), start=1):
            line = raw_line.strip()
            if not line or line[0] in "#;":
                continue
            if self.builder.should_stop(file, number):
                return
            if line.startswith("!"):
                self._directive(line, file, number, directory, depth)
                continue
            if line.startswith("["):
                body = strip_comment(line).strip()
                if not body.endswith("]") or len(body) < 3:
                    self.builder.error(file, number, "malformed [group] header")
                    continue
                group = body[1:-1].strip().lower()
                continue
            if group is None:
                self.builder.error(file, number, "option outside any [group]")
                continue
            self._option(group, strip_comment(line), file, number)

    def finish(self) -> None:
        self.builder.entries = [self.effective[name] for name in sorted(self.effective)]

    def _option(self, group: str, text: str, file: str, number: int) -> None:
        raw_name, eq, raw_value = text.partition("=")
        name = option_name(raw_name)
        if not re.fullmatch(r"[a-z0-9_.]+", name):
            self.builder.error(file, number, "malformed option name")
            return
        value: str | None = unquote(raw_value) if eq else None
        if value is not None:
            value = redact(value, self.key) if is_secret_name(name) else scrub_embedded(value, self.key)
        parameter = f"{group}.{name}"
        self.effective[parameter] = {"parameter": parameter, "value": value, "file": file, "line": number}

    def _directive(self, line: str, file: str, number: int, directory: str | None, depth: int) -> None:
        parts = strip_comment(line).split(None, 1)
        word, target = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        if word == "!include" and target:
            self.sources.include_file(target, directory=directory, file=file, line=number, depth=depth,
                                      missing_ok=False, parse=self.parse_text)
        elif word == "!includedir" and target:
            self.sources.include_dir(target, directory=directory, file=file, line=number, depth=depth,
                                     suffixes=(".cnf",), parse=self.parse_text)
        else:
            self.builder.error(file, number, "unknown ! directive or missing path")


def canonical(name: str, value: str | None) -> tuple[str, str]:
    """(comparison key, display) of one option value."""
    option = name.rpartition(".")[2]
    if value is None:
        return "bool:ON", "ON"
    lowered = value.lower()
    if lowered in ("on", "true", "yes") or (option in _BOOLEAN_OPTIONS and lowered == "1"):
        return "bool:ON", "ON"
    if lowered in ("off", "false", "no") or (option in _BOOLEAN_OPTIONS and lowered == "0"):
        return "bool:OFF", "OFF"
    size = _SIZE.fullmatch(value)
    if size:
        exponent = _SUFFIXES[::-1].index(size[2].upper()) + 1
        total = int(size[1]) * (1024 ** exponent)
        for suffix in _SUFFIXES:
            scale = 1024 ** (_SUFFIXES[::-1].index(suffix) + 1)
            if total % scale == 0:
                return f"int:{total}", f"{total // scale}{suffix}"
    if re.fullmatch(r"\d+", value):
        return f"int:{int(value)}", value
    return f"str:{value}", value


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    # Risk is judged by the option, whatever section (`mysqld.bind_address`) it sits in.
    return diff_values(old, new, canonical, lambda name, a, b: assess(name.rpartition(".")[2], a, b))


def assess(option: str, old: str | None, new: str | None) -> tuple[str, str]:
    if option == "skip_grant_tables" and new not in (None, "OFF") and old in (None, "OFF"):
        return "critical", "skip-grant-tables: anyone can connect as any user without a password"
    if option == "bind_address" and (new is None or new.strip() in _ALL_INTERFACES):
        return "high", "server listens on all network interfaces"
    if option == "skip_networking":
        return "high", "turns TCP networking on or off"
    if option == "require_secure_transport" and new in (None, "OFF") and old not in (None, "OFF"):
        return "high", "unencrypted connections are accepted again"
    if option == "innodb_flush_log_at_trx_commit" and new is not None and new != "1":
        return "high", "committed transactions can be lost on a crash"
    if option == "sync_binlog" and new == "0":
        return "high", "the binary log is not synced: a crash can lose or desynchronise replicated transactions"
    if any(word in option for word in _MEDIUM_WORDS):
        return "medium", "memory, storage, replication or security setting"
    return "low", "low-impact setting"
