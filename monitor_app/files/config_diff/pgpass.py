"""~/.pgpass: `hostname:port:database:username:password` lines, read as libpq reads them.

`\\:` and `\\\\` escape a colon and a backslash; the password is the rest of the line after the
fourth unescaped colon. libpq uses the first line that matches, so a later duplicate of the
same host:port:db:user never takes effect and the first one is the entry reported. The
password is always redacted; the parameter is `host:port:db:user` as written (escapes kept).
Malformed lines, which libpq silently skips, are reported as errors without their text.
"""

from __future__ import annotations

from typing import Any

from .model import ParsedBuilder, entries_by_name, make_change, sort_changes
from .redaction import redact
from .sources import ConfigSources


def split_fields(line: str) -> list[str] | None:
    """The four match fields (escaped as written) and the de-escaped password, or None."""
    fields: list[str] = []
    start, pos = 0, 0
    while len(fields) < 4:
        while pos < len(line) and line[pos] != ":":
            pos += 2 if line[pos] == "\\" else 1
        if pos >= len(line):
            return None
        fields.append(line[start:pos])
        pos += 1
        start = pos
    password = []
    rest = line[start:]
    index = 0
    while index < len(rest):
        if rest[index] == "\\" and index + 1 < len(rest):
            index += 1
        password.append(rest[index])
        index += 1
    return [*fields, "".join(password)]


class PgpassParser:
    def __init__(self, builder: ParsedBuilder, sources: ConfigSources, key: bytes) -> None:
        self.builder, self.key = builder, key
        self.effective: dict[str, dict[str, Any]] = {}

    def parse_text(self, text: str, file: str, directory: str | None, depth: int) -> None:
        for number, raw_line in enumerate(text.split("\n"), start=1):
            line = raw_line.rstrip("\r")
            if not line.strip() or line.startswith("#"):
                continue
            if self.builder.should_stop(file, number):
                return
            fields = split_fields(line)
            if fields is None:
                self.builder.error(file, number, "malformed line: fewer than 5 colon-separated fields")
                continue
            parameter = ":".join(fields[:4])
            if parameter in self.effective:
                continue  # libpq stops at the first match
            self.effective[parameter] = {"parameter": parameter, "value": redact(fields[4], self.key),
                                         "file": file, "line": number}

    def finish(self) -> None:
        self.builder.entries = [self.effective[name] for name in sorted(self.effective)]


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    before, after = entries_by_name(old), entries_by_name(new)
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old_entry, new_entry = before.get(name), after.get(name)
        old_value = str(old_entry.get("value")) if old_entry else None
        new_value = str(new_entry.get("value")) if new_entry else None
        if old_value == new_value:
            continue
        if old_value is None:
            wildcard = "*" in name.split(":")
            risk, reason = ("medium", "stored password for a wildcard match") if wildcard else \
                ("low", "new stored password")
            change = "added"
        elif new_value is None:
            risk, reason, change = "low", "stored password removed", "removed"
        else:
            risk, reason, change = "medium", "stored password changed", "changed"
        changes.append(make_change(name, change, old_value, new_value, risk=risk, reason=reason,
                                   restart_required=None, where=new_entry or old_entry))
    return sort_changes(changes)
