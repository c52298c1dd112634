"""Label matchers shared by routes, silences, inhibition rules and rule asset filters.

Written the Alertmanager way: `name=value`, `name!=value`, `name=~regex`, `name!~regex`
(value optionally double-quoted), or as a mapping `{name: value}` meaning equality.
Regexes are anchored, as in Alertmanager, so `env=~prod` does not match `preprod`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')
OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown operator {self.op!r}; use one of {', '.join(OPS)}")
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_regex", re.compile(f"(?:{self.value})\\Z"))
            except re.error as exc:
                raise ValueError(f"invalid regex {self.value!r}: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> "Matcher":
        found = _MATCHER.match(text)
        if not found:
            raise ValueError(f"cannot read matcher {text!r}; expected e.g. env=prod, env!=dev, env=~'prod|stage'")
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
        hit = self._regex.match(actual) is not None  # type: ignore[attr-defined]
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
        return [Matcher(str(k), "=", str(v)) for k, v in value.items()]
    if isinstance(value, str):
        return [Matcher.parse(value)]
    out: list[Matcher] = []
    for item in value:
        if isinstance(item, Matcher):
            out.append(item)
        elif isinstance(item, str):
            out.append(Matcher.parse(item))
        elif isinstance(item, Mapping):
            out.extend(parse_matchers(item))
        else:
            raise ValueError(f"cannot read matcher {item!r}")
    return out


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, Any]) -> bool:
    return all(m.matches(labels) for m in matchers)
