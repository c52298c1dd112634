"""pg_hba.conf: parsed into an ordered list of rules, the way hba.c tokenizes it.

Fields are separated by blanks; a field may be a comma list; double quotes protect blanks,
commas and `#`, and a quoted keyword (`"all"`) is a plain name, so quoting is kept in the
token's spelling. `@file` tokens are kept as written (their content is not this rule's).
`include`, `include_if_exists` and `include_dir` lines (PostgreSQL 16) splice other files in.

A rule's identity is (type, database, user, address) with the address and its mask rewritten
as one CIDR network, host names lower-cased, list items sorted and quotes dropped where they
change nothing (`"db1"` is `db1`, `"all"` is not `all`), so that equivalent
spellings are the same rule; method and options are its value. Options whose name marks a
secret (`ldapbindpasswd`, `radiussecrets`) are redacted. The diff is in `pg_hba_diff`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .model import ParsedBuilder
from .redaction import is_secret_name, redact
from .sources import ConfigSources

CONNECTION_TYPES = ("local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")
# An unknown method is an error (as in PostgreSQL), which also keeps a secret from a line with a
# field missing, such as a password option shifted into the method column, out of the output.
METHODS = ("trust", "reject", "scram-sha-256", "md5", "password", "gss", "sspi", "ident", "peer", "ldap",
           "radius", "cert", "pam", "bsd")
_INCLUDES = ("include", "include_if_exists", "include_dir")
# Unquoted, these are keywords (or markers: @file, +group, /regex); quoted, plain names.
_KEYWORDS = ("all", "sameuser", "samerole", "samegroup", "replication", "samehost", "samenet")

Token = tuple[str, bool]  # (text, was quoted)


class HbaSyntaxError(ValueError):
    pass


def tokenize_line(line: str) -> list[list[Token]]:
    """Fields of one logical line, each a list of comma-separated tokens (next_token in hba.c)."""
    fields: list[list[Token]] = []
    field: list[Token] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos] in " \t\r\n\f\v":
            pos += 1
        if pos >= end or line[pos] == "#":
            break
        chars: list[str] = []
        in_quote = saw_quote = was_quote = comma = False
        while pos < end and (in_quote or line[pos] not in " \t\r\n\f\v"):
            char = line[pos]
            pos += 1
            if char == "#" and not in_quote:
                pos = end
                break
            if char == "," and not in_quote:
                comma = True
                break
            if char != '"' or was_quote:
                chars.append(char)
            was_quote = (not was_quote) if (in_quote and char == '"') else False
            if char == '"':
                in_quote = not in_quote
                saw_quote = True
        if in_quote:
            raise HbaSyntaxError("unterminated quoted string")
        if chars or saw_quote:
            field.append(("".join(chars), saw_quote))
        if not comma:
            if field:
                fields.append(field)
            field = []
    if field:
        fields.append(field)
    return fields


def show_token(token: Token) -> str:
    """A token's canonical spelling: quoted only where quotes change its meaning or are needed."""
    text, quoted = token
    needed = not text or text in _KEYWORDS or text[0] in "@+/" or any(c in text for c in ' \t,#"')
    return '"' + text.replace('"', '""') + '"' if quoted and needed else text


def normalise_address(fields: list[list[Token]]) -> tuple[str, int]:
    """The address field (with a separate mask field if any) as one string; and how many fields it used."""
    if len(fields[0]) != 1:
        raise HbaSyntaxError("multiple values in the address field")
    text, quoted = fields[0][0]
    if quoted or text in ("all", "samehost", "samenet"):
        return show_token(fields[0][0]), 1
    if "/" in text:
        try:
            return str(ipaddress.ip_network(text, strict=False)), 1
        except ValueError:
            raise HbaSyntaxError("invalid CIDR address") from None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text.lower(), 1  # a host name or .domain suffix
    if len(fields) < 2 or len(fields[1]) != 1:
        raise HbaSyntaxError("IP address without a CIDR mask or netmask field")
    try:
        mask = ipaddress.ip_address(fields[1][0][0])
    except ValueError:
        raise HbaSyntaxError("invalid netmask") from None
    bits = int(mask)
    width = address.max_prefixlen
    prefix = bin(bits).count("1")
    if mask.version != address.version or bits != ((1 << width) - 1) ^ ((1 << (width - prefix)) - 1):
        raise HbaSyntaxError("netmask does not match the address or is not contiguous")
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False)), 2


def parse_rule(fields: list[list[Token]], key: bytes) -> dict[str, Any]:
    conn_type = fields[0]
    if len(conn_type) != 1 or conn_type[0][1] or conn_type[0][0] not in CONNECTION_TYPES:
        raise HbaSyntaxError("unknown connection type")
    kind = conn_type[0][0]
    if len(fields) < 4:
        raise HbaSyntaxError("too few fields")
    database = ",".join(sorted(show_token(t) for t in fields[1]))
    user = ",".join(sorted(show_token(t) for t in fields[2]))
    rest = fields[3:]
    address = None
    if kind != "local":
        address, used = normalise_address(rest)
        rest = rest[used:]
    if not rest:
        raise HbaSyntaxError("missing authentication method")
    if len(rest[0]) != 1:
        raise HbaSyntaxError("multiple values in the method field")
    method = rest[0][0][0]
    if method not in METHODS or rest[0][0][1]:
        raise HbaSyntaxError("unknown authentication method")
    options: dict[str, str] = {}
    for field in rest[1:]:
        for text, _quoted in field:
            name, eq, value = text.partition("=")
            if not eq or not name:
                raise HbaSyntaxError("authentication option not in name=value form")
            options[name] = redact(value, key) if is_secret_name(name) else value
    identity = " ".join(part for part in (kind, database, user, address) if part is not None)
    return {"rule": identity, "type": kind, "database": database, "user": user, "address": address,
            "method": method, "options": dict(sorted(options.items()))}


class PgHbaParser:
    def __init__(self, builder: ParsedBuilder, sources: ConfigSources, key: bytes) -> None:
        self.builder, self.sources, self.key = builder, sources, key
        self.rules: list[dict[str, Any]] = []

    def parse_text(self, text: str, file: str, directory: str | None, depth: int) -> None:
        lines = text.split("\n")
        number = 0
        while number < len(lines):
            start = number + 1
            logical = lines[number]
            number += 1
            stripped = logical.lstrip(" \t\r")
            if not stripped or stripped[0] == "#":
                continue  # a comment line does not continue, even if it ends in a backslash
            if self.builder.should_stop(file, start):
                return
            # A backslash at the end of a line continues it on the next.
            while logical.rstrip("\r").endswith("\\") and number < len(lines):
                logical = logical.rstrip("\r")[:-1] + " " + lines[number]
                number += 1
            self._parse_line(logical, file, start, directory, depth)

    def finish(self) -> None:
        seen: dict[str, int] = {}
        for rule in self.rules:
            # A repeated identity can never match (the first wins) but still is a line to track.
            count = seen[rule["rule"]] = seen.get(rule["rule"], 0) + 1
            if count > 1:
                rule["rule"] = f"{rule['rule']} (#{count})"
        self.builder.entries = self.rules

    def _parse_line(self, line: str, file: str, number: int, directory: str | None, depth: int) -> None:
        try:
            fields = tokenize_line(line)
            if not fields:
                return
            first = fields[0]
            if len(first) == 1 and not first[0][1] and first[0][0] in _INCLUDES:
                self._include(first[0][0], fields, file, number, directory, depth)
                return
            rule = parse_rule(fields, self.key)
        except HbaSyntaxError as exc:
            self.builder.error(file, number, f"invalid rule: {exc}")
            return
        rule.update(file=file, line=number)
        self.rules.append(rule)

    def _include(self, directive: str, fields: list[list[Token]], file: str, line: int,
                 directory: str | None, depth: int) -> None:
        if len(fields) != 2 or len(fields[1]) != 1:
            raise HbaSyntaxError(f"{directive} takes exactly one file name")
        target = fields[1][0][0]
        if directive == "include_dir":
            self.sources.include_dir(target, directory=directory, file=file, line=line, depth=depth,
                                     suffixes=(".conf",), parse=self.parse_text)
        else:
            self.sources.include_file(target, directory=directory, file=file, line=line, depth=depth,
                                      missing_ok=directive == "include_if_exists", parse=self.parse_text)
