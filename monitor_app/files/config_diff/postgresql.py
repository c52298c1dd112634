"""postgresql.conf and postgresql.auto.conf: parsed as the server's own lexer (guc-file.l) reads them.

A line is `name [=] value [# comment]`. Tokens are matched the way flex does (longest match,
ties to the earlier rule), which is why `search_path = public.x` is an error here exactly as in
PostgreSQL (`public.x` is a qualified name, not a value). Quoted values take `''` and backslash
escapes. Names fold to lower case and the last definition wins, across `include`,
`include_if_exists` and `include_dir` (relative to the including file). The parsed form keeps
each parameter's effective value as written (secrets redacted); meaning is applied only when
diffing, because it depends on the server's `pg_settings` (see `pg_values`, risks in `pg_risk`).
"""

from __future__ import annotations

import re
from typing import Any

from .model import ParsedBuilder, entries_by_name, make_change, sort_changes
from .pg_risk import assess
from .pg_values import normalise, settings_table
from .redaction import is_secret_name, redact, redact_conninfo, scrub_embedded
from .sources import ConfigSources

_LETTER = "A-Za-z_\u0080-\U0010ffff"
# guc-file.l's rules in their priority order; a longer match beats an earlier rule. Grouped by
# the characters a token can start with, since no two groups can match at the same place.
_WORD_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("id", re.compile(rf"[{_LETTER}][{_LETTER}0-9]*")),
    ("qualified_id", re.compile(rf"[{_LETTER}][{_LETTER}0-9]*\.[{_LETTER}][{_LETTER}0-9]*")),
    ("unquoted", re.compile(rf"[{_LETTER}](?:[{_LETTER}0-9]|[-._:/])*")),
)
_NUMBER_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("integer", re.compile(r"[-+]?(?:0x[0-9a-fA-F]+|[0-9]+)[a-zA-Z]*")),
    ("real", re.compile(r"[-+]?[0-9]*\.[0-9]*(?:[Ee][-+]?[0-9]+)?")),
)
_OTHER_RULES: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    "'": (("string", re.compile(r"'(?:[^'\\\n]|\\.|'')*'")),),
    "=": (("equals", re.compile(r"=")),),
}
_SPACE = re.compile(r"[ \t\r]+")
_NAME_TOKENS = ("id", "qualified_id")
_VALUE_TOKENS = ("id", "string", "integer", "real", "unquoted")
_INCLUDES = ("include", "include_if_exists", "include_dir")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def tokenize_line(line: str, limit: int = 4) -> list[tuple[str, str]] | None:
    """The tokens of one line without whitespace and comment; None if a character fits no rule.

    A valid line has at most three tokens, so lexing stops after `limit`: a long garbage line
    costs no more than a short one.
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line) and len(tokens) < limit:
        space = _SPACE.match(line, pos)
        if space:
            pos = space.end()
            continue
        if line[pos] == "#":
            break
        first = line[pos]
        rules = _OTHER_RULES.get(first) or (_NUMBER_RULES if first in "0123456789+-." else _WORD_RULES)
        best: tuple[str, str] | None = None
        for kind, pattern in rules:
            match = pattern.match(line, pos)
            if match and match.end() > pos and (best is None or len(match[0]) > len(best[1])):
                best = (kind, match[0])
        if best is None:
            return None
        tokens.append(best)
        pos += len(best[1])
    return tokens


def _blank_or_comment(line: str) -> bool:
    stripped = line.lstrip(" \t\r")
    return not stripped or stripped[0] == "#"


def unquote(token: str) -> str:
    """DeescapeQuotedString: strip the quotes, undo `''` and backslash escapes (octal included)."""
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            octal = re.match(r"[0-7]{1,3}", body[i + 1:i + 4])
            if octal:
                code = int(octal[0], 8) & 0xFF
                # A raw byte above ASCII is kept the way undecodable input bytes are kept.
                out.append(chr(code) if code < 0x80 else chr(0xDC00 + code))
                i += 1 + len(octal[0])
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        elif char == "'" and body[i + 1:i + 2] == "'":
            out.append("'")
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def redact_value(name: str, value: str, key: bytes) -> str:
    if is_secret_name(name):
        return redact(value, key)
    if "conninfo" in name:
        return redact_conninfo(value, key)
    return scrub_embedded(value, key)


class PostgresqlParser:
    def __init__(self, builder: ParsedBuilder, sources: ConfigSources, key: bytes) -> None:
        self.builder, self.sources, self.key = builder, sources, key
        self.effective: dict[str, dict[str, Any]] = {}

    def parse_text(self, text: str, file: str, directory: str | None, depth: int) -> None:
        for number, line in enumerate(text.split("\n"), start=1):
            if _blank_or_comment(line):
                continue
            if self.builder.should_stop(file, number):
                return
            parsed = self._parse_line(line, file, number)
            if parsed is None:
                continue
            name, value = parsed
            if name in _INCLUDES:
                self._include(name, value, file, number, directory, depth)
            else:
                self.effective[name] = {"parameter": name, "value": redact_value(name, value, self.key),
                                        "file": file, "line": number}

    def finish(self) -> None:
        self.builder.entries = [self.effective[name] for name in sorted(self.effective)]

    def _parse_line(self, line: str, file: str, number: int) -> tuple[str, str] | None:
        tokens = tokenize_line(line)
        if tokens is None:
            self.builder.error(file, number, "syntax error: unexpected character")
            return None
        if not tokens:
            return None
        if tokens[0][0] not in _NAME_TOKENS:
            self.builder.error(file, number, "syntax error: a line must start with a parameter name")
            return None
        rest = tokens[1:]
        if rest and rest[0][0] == "equals":
            rest = rest[1:]
        if not rest or rest[0][0] not in _VALUE_TOKENS:
            self.builder.error(file, number, "syntax error: missing or malformed value")
            return None
        if len(rest) > 1:
            self.builder.error(file, number, "syntax error: unexpected text after the value")
            return None
        kind, value = rest[0]
        return tokens[0][1].lower(), unquote(value) if kind == "string" else value

    def _include(self, directive: str, target: str, file: str, line: int, directory: str | None,
                 depth: int) -> None:
        if directive == "include_dir":
            self.sources.include_dir(target, directory=directory, file=file, line=line, depth=depth,
                                     suffixes=(".conf",), parse=self.parse_text)
        else:
            self.sources.include_file(target, directory=directory, file=file, line=line, depth=depth,
                                      missing_ok=directive == "include_if_exists", parse=self.parse_text)


def diff(old: dict[str, Any], new: dict[str, Any], pg_settings: dict[str, dict] | None) -> list[dict[str, Any]]:
    table = settings_table(pg_settings)
    before, after = entries_by_name(old), entries_by_name(new)
    changes = []
    for name in sorted(before.keys() | after.keys()):
        info = table.get(name)
        old_entry, new_entry = before.get(name), after.get(name)
        old_value = normalise(str(old_entry.get("value", "")), info, name) if old_entry else None
        new_value = normalise(str(new_entry.get("value", "")), info, name) if new_entry else None
        if old_value and new_value and old_value.compare == new_value.compare:
            continue
        change = "added" if old_value is None else "removed" if new_value is None else "changed"
        restart = _restart_required(info)
        old_shown = old_value.display if old_value else None
        new_shown = new_value.display if new_value else None
        risk, reason = assess(name, old_shown, new_shown, restart, info.get("unit") if info else None)
        changes.append(make_change(name, change, old_shown, new_shown, risk=risk, reason=reason,
                                   restart_required=restart, where=new_entry or old_entry))
    return sort_changes(changes)


def _restart_required(info: dict[str, Any] | None) -> bool | None:
    if info is None or not info.get("context"):
        return None
    return info["context"] == "postmaster"
