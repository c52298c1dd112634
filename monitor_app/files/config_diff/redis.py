"""redis.conf: `directive arg ...` lines, split the way Redis splits them (sdssplitargs).

Most directives are single-valued and the last one wins. The ones Redis lets repeat are kept
as lists or keyed by what they name, so a repeated line is never mistaken for an override:
`save` (a set of save points; `save ""` clears it), `include`, `loadmodule` and `sentinel`
(ordered lists), `rename-command <command>`, `client-output-buffer-limit <class>` and
`user <name>` (one parameter per command, class or user). `include` paths (with wildcards, as
Redis 7 allows) resolve against the including file's directory.

Secrets: `requirepass`, `masterauth`, any directive whose name marks a secret, the password
parts of `user` ACL rules (`>pass`, `<pass`, `#hash`, `!hash`), `sentinel auth-pass`, and the
new name of a renamed command (a renamed CONFIG is only as hidden as its new name).
Comparison is in `redis_diff`.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

from .model import ParsedBuilder
from .redaction import is_secret_name, redact
from .sources import ConfigSources

LIST_DIRECTIVES = ("save", "include", "loadmodule", "sentinel")
SECRET_DIRECTIVES = ("requirepass", "masterauth", "primaryauth", "tls-key-file-pass", "tls-client-key-file-pass")
_MAX_GLOB_MATCHES = 1000
_C_SPACE = " \t\n\v\f\r"
_BLANKS = re.compile(r"[ \t\n\v\f\r]+")  # C isspace, not Unicode whitespace
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}


class RedisSyntaxError(ValueError):
    pass


def split_args(line: str) -> list[str]:
    """sdssplitargs: blanks separate, "double" quotes take escapes, 'single' quotes only \\'."""
    if '"' not in line and "'" not in line:
        return [arg for arg in _BLANKS.split(line) if arg]  # the common case, without a char loop
    args: list[str] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos] in _C_SPACE:
            pos += 1
        if pos >= end:
            return args
        chars: list[str] = []
        quote = None
        while True:
            if pos >= end:
                if quote:
                    raise RedisSyntaxError("unbalanced quotes")
                break
            char = line[pos]
            if quote == '"' and char == "\\" and pos + 1 < end:
                hexa = re.match(r"x([0-9a-fA-F]{2})", line[pos + 1:pos + 4])
                if hexa:
                    code = int(hexa[1], 16)
                    chars.append(chr(code) if code < 0x80 else chr(0xDC00 + code))
                    pos += 4
                    continue
                chars.append(_ESCAPES.get(line[pos + 1], line[pos + 1]))
                pos += 2
                continue
            if quote == "'" and char == "\\" and line[pos + 1:pos + 2] == "'":
                chars.append("'")
                pos += 2
                continue
            if quote and char == quote:
                pos += 1
                if pos < end and line[pos] not in _C_SPACE:
                    raise RedisSyntaxError("closing quote must be followed by a space")
                break
            if not quote and char in _C_SPACE:
                break
            if not quote and char in "\"'":
                quote = char
            else:
                chars.append(char)
            pos += 1
        args.append("".join(chars))


def quote_arg(arg: str) -> str:
    if arg and not any(c.isspace() or c in "\"'\\" for c in arg):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def join_args(args: list[str]) -> str:
    return " ".join(quote_arg(arg) for arg in args)


def redact_acl_rule(rule: str, key: bytes) -> str:
    if rule[:1] in (">", "<") and len(rule) > 1:
        return rule[0] + redact(rule[1:], key)
    if rule[:1] in ("#", "!") and len(rule) > 1:
        return rule[0] + redact(rule[1:], key)
    return rule


class RedisParser:
    def __init__(self, builder: ParsedBuilder, sources: ConfigSources, key: bytes) -> None:
        self.builder, self.sources, self.key = builder, sources, key
        self.effective: dict[str, dict[str, Any]] = {}

    def parse_text(self, text: str, file: str, directory: str | None, depth: int) -> None:
        for number, raw_line in enumerate(text.split("\n"), start=1):
            line = raw_line.strip(" \t\r\n")
            if not line or line.startswith("#"):
                continue
            if self.builder.should_stop(file, number):
                return
            try:
                args = split_args(line)
                if len(args) == 1:
                    # Every Redis directive takes an argument; a lone word may be a pasted password.
                    raise RedisSyntaxError("directive without arguments")
                if args:
                    self._directive(args[0].lower(), args[1:], file, number, directory, depth)
            except RedisSyntaxError as exc:
                self.builder.error(file, number, f"invalid line: {exc}")

    def finish(self) -> None:
        self.builder.entries = [self.effective[name] for name in sorted(self.effective)]

    def _directive(self, name: str, args: list[str], file: str, number: int, directory: str | None,
                   depth: int) -> None:
        if name == "include":
            if len(args) != 1:
                raise RedisSyntaxError("include takes one path")
            self._append("include", [join_args(args)], file, number)
            self._include(args[0], file, number, directory, depth)
        elif name == "save":
            self._save(args, file, number)
        elif name == "loadmodule":
            self._append(name, [join_args(args)], file, number)
        elif name == "sentinel":
            if len(args) >= 3 and args[0].lower() == "auth-pass":
                args = [*args[:-1], redact(args[-1], self.key)]
            self._append(name, [join_args(args)], file, number)
        elif name == "rename-command":
            if len(args) != 2:
                raise RedisSyntaxError("rename-command takes a command and a new name")
            target = redact(args[1], self.key) if args[1] else ""
            self._set(f"rename-command {args[0].lower()}", join_args([target]), file, number)
        elif name == "client-output-buffer-limit":
            if not args or len(args) % 4:
                raise RedisSyntaxError("client-output-buffer-limit takes groups of class, hard, soft, seconds")
            for start in range(0, len(args), 4):
                group = args[start:start + 4]
                klass = {"slave": "replica"}.get(group[0].lower(), group[0].lower())
                self._set(f"{name} {klass}", join_args(group[1:]), file, number)
        elif name == "user":
            if not args:
                raise RedisSyntaxError("user takes a name")
            rules = [redact_acl_rule(rule, self.key) for rule in args[1:]]
            self._set(f"user {args[0]}", join_args(rules), file, number)
        elif name in SECRET_DIRECTIVES or is_secret_name(name):
            self._set(name, join_args([redact(" ".join(args), self.key)]), file, number)
        else:
            self._set(name, join_args(args), file, number)

    def _set(self, parameter: str, value: str, file: str, number: int) -> None:
        self.effective[parameter] = {"parameter": parameter, "value": value, "file": file, "line": number}

    def _append(self, parameter: str, items: list[str], file: str, number: int) -> None:
        entry = self.effective.setdefault(parameter, {"parameter": parameter, "value": []})
        entry["value"] = [*entry["value"], *items]
        entry.update(file=file, line=number)

    def _save(self, args: list[str], file: str, number: int) -> None:
        if args == [""]:
            # `save ""` turns snapshots off: an explicit empty list, not an absent directive.
            self.effective["save"] = {"parameter": "save", "value": [], "file": file, "line": number}
            return
        if not args or len(args) % 2 or not all(arg.isdigit() for arg in args):
            raise RedisSyntaxError("save takes pairs of seconds and changes")
        pairs = [f"{int(args[i])} {int(args[i + 1])}" for i in range(0, len(args), 2)]
        self._append("save", pairs, file, number)

    def _include(self, target: str, file: str, number: int, directory: str | None, depth: int) -> None:
        if directory is not None and any(c in target for c in "*?["):
            matches = sorted(glob.glob(os.path.join(directory, target)), key=os.fsencode)
            if len(matches) > _MAX_GLOB_MATCHES:
                self.builder.error(file, number, f"include pattern matches more than {_MAX_GLOB_MATCHES} files")
                matches = matches[:_MAX_GLOB_MATCHES]
            for match in matches:
                self.sources.include_file(match, directory=directory, file=file, line=number, depth=depth,
                                          missing_ok=False, parse=self.parse_text)
            return
        self.sources.include_file(target, directory=directory, file=file, line=number, depth=depth,
                                  missing_ok=False, parse=self.parse_text)
