"""What a postgresql.conf value means, so equivalent spellings compare equal.

PostgreSQL reads a value by the parameter's type and unit (guc.c: parse_bool, parse_int,
parse_real, convert_to_base_unit), so the same rules are followed here: `128MB`, `131072kB` and,
for `shared_buffers` (unit 8kB), a bare `16384` are one value. Units are case-sensitive, a
fractional value is rounded to the next smaller unit and then to the parameter's base unit,
integers may be hex or octal, booleans accept unique prefixes of true/false/yes/no and
exactly on/off/1/0. A value PostgreSQL would reject is compared as written.

Each parameter's type and unit come from `pg_settings`: the live server's when the caller has
it, else the table shipped with dbmon (`pg_settings_table.json`, from PostgreSQL 15). The
display form uses the largest unit that states the value exactly (`128MB`, `5min`).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

SETTINGS_TABLE = Path(__file__).with_name("pg_settings_table.json")

# Largest first: PostgreSQL rounds a fractional value to a multiple of the next unit down.
MEMORY_UNITS: tuple[tuple[str, int], ...] = (
    ("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10), ("B", 1))
TIME_UNITS: tuple[tuple[str, int], ...] = (
    ("d", 86_400_000_000), ("h", 3_600_000_000), ("min", 60_000_000), ("s", 1_000_000), ("ms", 1000), ("us", 1))

# String parameters that PostgreSQL reads as comma lists, where spacing around commas is noise.
LIST_PARAMETERS = frozenset({
    "shared_preload_libraries", "session_preload_libraries", "local_preload_libraries", "search_path",
    "listen_addresses", "temp_tablespaces", "log_destination", "unix_socket_directories",
})

_INTEGER = re.compile(r"\s*([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_FLOAT = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_UNIT_SPEC = re.compile(r"(\d*)\s*([A-Za-z]+)")


class Normalised(NamedTuple):
    compare: str  # equal exactly when PostgreSQL would read the same setting
    display: str


@lru_cache(maxsize=1)
def builtin_settings() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(SETTINGS_TABLE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        # A packaging fault, not bad input: guessing units without the table would report
        # `128MB` -> `131072kB` as a change, so fail loudly instead.
        raise RuntimeError(f"{SETTINGS_TABLE.name} is missing from the installed package; "
                           "pass pg_settings= or reinstall dbmon") from None
    return {name.lower(): info for name, info in data.items() if isinstance(info, dict)}


def settings_table(pg_settings: dict[str, dict] | None) -> dict[str, dict[str, Any]]:
    """The caller's pg_settings (names folded like PostgreSQL folds them) or the shipped table."""
    if pg_settings is None:
        return builtin_settings()
    return {str(name).lower(): info for name, info in pg_settings.items() if isinstance(info, dict)}


def normalise(raw: str, info: dict[str, Any] | None, name: str = "") -> Normalised:
    if info is None:
        return _normalise_unknown(raw)
    vartype = info.get("vartype")
    if vartype == "bool":
        parsed = parse_bool(raw)
        return _as_written(raw) if parsed is None else Normalised(f"bool:{parsed}", "on" if parsed else "off")
    if vartype in ("integer", "real"):
        return _normalise_number(raw, info.get("unit"), integer=vartype == "integer")
    if vartype == "enum":
        lowered = raw.lower()
        # Enums such as synchronous_commit or huge_pages take the boolean spellings as aliases.
        lowered = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}.get(lowered, lowered)
        return Normalised(f"enum:{lowered}", lowered)
    if name in LIST_PARAMETERS:
        items = ", ".join(_split_list(raw))
        return Normalised(f"list:{items}", items)
    return _as_written(raw)


def parse_bool(value: str) -> bool | None:
    lowered = value.lower()
    if not lowered:
        return None
    for word, meaning in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(lowered):
            return meaning
    # "o" alone is ambiguous; "of" is already unique.
    return {"on": True, "of": False, "off": False, "1": True, "0": False}.get(lowered)


def unit_scale(unit: str | None) -> tuple[tuple[tuple[str, int], ...], int] | None:
    """The unit family and the size of one base unit (`8kB` -> memory, 8192), or None if unitless."""
    match = _UNIT_SPEC.fullmatch(unit or "")
    if match is None:
        return None
    count = int(match[1]) if match[1] else 1
    for family in (MEMORY_UNITS, TIME_UNITS):
        for name, size in family:
            if name == match[2]:
                return family, count * size
    return None


def _as_written(raw: str) -> Normalised:
    return Normalised(f"raw:{raw}", raw)


def _normalise_number(raw: str, unit: str | None, *, integer: bool) -> Normalised:
    scale = unit_scale(unit)
    number_and_rest = _parse_number(raw, integer=integer)
    if number_and_rest is None:
        return _as_written(raw)
    number, rest = number_and_rest
    if not rest:
        base = number
    else:
        if scale is None:
            return _as_written(raw)
        converted = _convert_to_base(number, rest, scale)
        if converted is None:
            return _as_written(raw)
        base = converted
    if integer:
        if not math.isfinite(base):
            return _as_written(raw)
        whole = int(round(base))  # round() is round-half-even, as C's rint in the default mode
        return Normalised(f"int:{whole}", _display(whole, scale))
    if not math.isfinite(base):
        return _as_written(raw)
    if base == int(base):
        return Normalised(f"real:{float(base)!r}", _display(int(base), scale))
    base_unit = unit or ""
    return Normalised(f"real:{float(base)!r}", f"{base:.15g}{base_unit if scale else ''}")


def _parse_number(raw: str, *, integer: bool) -> tuple[float, str] | None:
    """strtol(base 0) with a fall-back to strtod, as parse_int does; strtod alone for reals."""
    if integer:
        match = _INTEGER.match(raw)
        if match is not None and raw[match.end():match.end() + 1] not in (".", "e", "E"):
            digits = match[2]
            base = 16 if digits[:2] in ("0x", "0X") else 8 if digits.startswith("0") else 10
            value = int(digits, base)
            return float(-value if match[1] == "-" else value), raw[match.end():].strip()
    match = _FLOAT.match(raw)
    if match is None:
        return None
    return float(match[0]), raw[match.end():].strip()


def _convert_to_base(number: float, unit: str, scale: tuple[tuple[tuple[str, int], ...], int]) -> float | None:
    family, base_size = scale
    for index, (name, size) in enumerate(family):
        if name == unit:
            smallest = number * size
            if index + 1 < len(family):
                next_size = family[index + 1][1]
                smallest = round(smallest / next_size) * next_size
            return smallest / base_size
    return None


def _display(value: int, scale: tuple[tuple[tuple[str, int], ...], int] | None) -> str:
    if scale is None or value <= 0:
        return str(value)
    family, base_size = scale
    total = value * base_size
    for name, size in family:
        if total % size == 0:
            return f"{total // size}{name}"
    return str(value)


def _normalise_unknown(raw: str) -> Normalised:
    # A parameter nobody described (an extension's, or a typo): units still read the usual way.
    match = re.fullmatch(r"\s*([-+]?\d+)\s*([A-Za-z]+)\s*", raw)
    if match is not None:
        for family in (MEMORY_UNITS, TIME_UNITS):
            sizes = dict(family)
            if match[2] in sizes:
                total = int(match[1]) * sizes[match[2]]
                return Normalised(f"amount:{match[2] in dict(MEMORY_UNITS)}:{total}", _display(total, (family, 1)))
    return _as_written(raw)


def _split_list(raw: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in raw:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item] if any(items) else []
