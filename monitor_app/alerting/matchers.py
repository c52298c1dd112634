"""Label matchers shared by routes, silences, inhibition rules and rule asset filters.

Written the Alertmanager way: `name=value`, `name!=value`, `name=~regex`, `name!~regex`
(value optionally double-quoted), or as a mapping `{name: value}` meaning equality.
Regexes are anchored, as in Alertmanager, so `env=~prod` does not match `preprod`.

Regexes run on RE2, whose matching time is linear in the label's length: an operator's
`(a+)+$` cannot stall alert evaluation on a label a monitored system chose. RE2 has no
backreferences or lookaround, so such patterns are refused when the matcher is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import re2

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')
OPS = ("=", "!=", "=~", "!~")
MAX_MATCHERS = 32
MAX_MATCHER_LENGTH = 1024
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 8 << 20  # a compiled program larger than this is refused, not built


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown operator {self.op!r}; use one of {', '.join(OPS)}")
        if len(self.name) + len(self.value) > MAX_MATCHER_LENGTH:
            raise ValueError(f"matcher longer than {MAX_MATCHER_LENGTH} characters")
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_regex", re2.compile(self.value, _RE2_OPTIONS))
            except re2.error as exc:
                reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
                raise ValueError(f"invalid regex {self.value[:80]!r}: {reason}") from None

    @classmethod
    def parse(cls, text: str) -> "Matcher":
        if len(text) > MAX_MATCHER_LENGTH + 8:
            raise ValueError(f"matcher longer than {MAX_MATCHER_LENGTH} characters")
        found = _MATCHER.match(text)
        if not found:
            raise ValueError(f"cannot read matcher {text[:80]!r}; expected e.g. env=prod, env!=dev, env=~'prod|stage'")
        name, op, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return cls(name, op, value)

    def matches(self, labels: Mapping[str, Any]) -> bool:
        actual = "" if labels.get(self.name) is None else str(labels.get(self.name))
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        try:
            hit = self._regex.fullmatch(actual) is not None  # type: ignore[attr-defined]
        except UnicodeEncodeError:  # a lone surrogate in a label: RE2 matches UTF-8 only
            hit = self._regex.fullmatch(actual.encode("utf-8", "replace").decode()) is not None  # type: ignore[attr-defined]
        return hit if self.op == "=~" else not hit

    def to_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matchers(value: Any) -> list[Matcher]:
    """Accepts a list of strings/dicts, or one mapping of equalities."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        if {"name", "value"} <= set(value):
            return [Matcher(str(value["name"]), str(value.get("op", "=")), str(value["value"]))]
        if len(value) > MAX_MATCHERS:
            raise ValueError(f"at most {MAX_MATCHERS} matchers")
        return [Matcher(str(k), "=", str(v)) for k, v in value.items()]
    if isinstance(value, str):
        return [Matcher.parse(value)]
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list of matchers such as env=prod")
    out: list[Matcher] = []
    for item in value:
        if len(out) >= MAX_MATCHERS:
            raise ValueError(f"at most {MAX_MATCHERS} matchers")
        if isinstance(item, Matcher):
            out.append(item)
        elif isinstance(item, str):
            out.append(Matcher.parse(item))
        elif isinstance(item, Mapping):
            out.extend(parse_matchers(item))
        else:
            raise ValueError(f"cannot read matcher of type {type(item).__name__}")
    return out


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, Any]) -> bool:
    return all(m.matches(labels) for m in matchers)
