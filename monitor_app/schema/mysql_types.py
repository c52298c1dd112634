"""MySQL and MariaDB column types: one spelling for both servers, and how a type change moves.

`normalise_type` drops integer display widths (`int(11)`; MySQL 8.0.19 stopped showing them,
MariaDB still does) except where they mean something (`tinyint(1)`, read as boolean by most
connectors, and ZEROFILL). `type_shift` says what kind of change a `MODIFY` made, which is
what decides whether InnoDB rewrites the table: see `mysql_rubric` for the algorithms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INT_BYTES = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8}
_TEXT_BYTES = {"tinytext": 255, "text": 65_535, "mediumtext": 16_777_215, "longtext": 4_294_967_295}
_BLOB_BYTES = {"tinyblob": 255, "blob": 65_535, "mediumblob": 16_777_215, "longblob": 4_294_967_295}
_FLOAT_BYTES = {"float": 4, "double": 8, "double precision": 8, "real": 8}
_TIME_RANK = {"date": 1, "datetime": 2, "timestamp": 2}
# Bytes per character of each character set, for VARCHAR's length prefix (1 byte up to 255 bytes).
_MAX_BYTES_PER_CHAR = {"latin1": 1, "ascii": 1, "binary": 1, "utf8mb3": 3, "utf8": 3, "utf8mb4": 4, "ucs2": 2,
                       "utf16": 4, "utf16le": 4, "utf32": 4, "cp1250": 1, "cp1251": 1, "cp1252": 1, "gbk": 2,
                       "big5": 2, "sjis": 2, "ujis": 3, "euckr": 2, "gb2312": 2, "gb18030": 4}
_DISPLAY_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|integer|bigint)\((\d+)\)")
_VOLATILE_CALL = re.compile(r"\b(uuid|uuid_short|rand|random_bytes|sysdate|nextval)\s*\(|\bnext\s+value\s+for\b",
                            re.IGNORECASE)


def normalise_type(column_type: str) -> str:
    t = column_type.strip().lower()
    m = _DISPLAY_WIDTH.match(t)
    if m and "zerofill" not in t and not (m.group(1) == "tinyint" and m.group(2) == "1"):
        t = m.group(1) + t[m.end():]
    return t


def volatile_default(default: str | None) -> bool:
    """A default computed per row (uuid(), rand(), NEXT VALUE FOR): ADD COLUMN must write every row."""
    return bool(default and _VOLATILE_CALL.search(default))


@dataclass(frozen=True)
class ColumnType:
    base: str
    args: tuple[str, ...]
    unsigned: bool

    @property
    def family(self) -> str:
        if self.base in _INT_BYTES or self.base == "bit":
            return "integer"
        if self.base in ("decimal", "numeric", "dec", "fixed"):
            return "decimal"
        if self.base in _FLOAT_BYTES:
            return "float"
        if self.base in ("char", "varchar") or self.base in _TEXT_BYTES:
            return "text"
        if self.base in ("binary", "varbinary") or self.base in _BLOB_BYTES:
            return "binary"
        if self.base in _TIME_RANK:
            return "time"
        return self.base  # enum, set, json, time, year, geometry, ...

    def width(self) -> float:
        """Size of the largest value, in the type's own unit (bytes, digits or characters)."""
        if self.base in _INT_BYTES:
            return _INT_BYTES[self.base]
        if self.base in _FLOAT_BYTES:
            return _FLOAT_BYTES[self.base]
        if self.base in _TEXT_BYTES:
            return _TEXT_BYTES[self.base]
        if self.base in _BLOB_BYTES:
            return _BLOB_BYTES[self.base]
        if self.base in _TIME_RANK:
            return _TIME_RANK[self.base]
        if self.args and self.args[0].isdigit():
            return int(self.args[0])
        return float("inf")

    def scale(self) -> int:
        return int(self.args[1]) if len(self.args) > 1 and self.args[1].isdigit() else 0


def parse_type(column_type: str | None) -> ColumnType:
    t = normalise_type(column_type or "")
    m = re.match(r"([a-z ]+?)\s*(?:\((.*)\))?\s*((?:unsigned|signed|zerofill|\s)*)$", t)
    if not m:
        return ColumnType(t, (), False)
    raw = m.group(2) or ""
    args = tuple(a.strip() for a in re.findall(r"'(?:[^']|'')*'|[^,]+", raw)) if raw else ()
    return ColumnType(m.group(1).strip(), args, "unsigned" in (m.group(3) or ""))


def enum_members(column_type: str | None) -> list[str]:
    return [a[1:-1].replace("''", "'") for a in parse_type(column_type).args if a.startswith("'")]


def _enum_storage(base: str, count: int) -> int:
    if base == "enum":
        return 1 if count <= 255 else 2
    return min(8, max(1, (count + 7) // 8)) if count <= 64 else 8


def varchar_length_bytes(column_type: str | None, charset: str | None) -> int:
    """Bytes of VARCHAR's length prefix: 1 while its largest value fits in 255 bytes, else 2."""
    t = parse_type(column_type)
    per_char = _MAX_BYTES_PER_CHAR.get((charset or "").lower(), 4)
    return 1 if t.width() * per_char <= 255 else 2


def type_shift(before: str | None, after: str | None, charset_before: str | None = None,
               charset_after: str | None = None) -> str:
    """One of: `enum appended`, `enum changed`, `varchar extended in place`, `narrowed`, `family`,
    `widened` (by a copy), or `same` when only the spelling differs."""
    a, b = parse_type(before), parse_type(after)
    if (a.base, a.args, a.unsigned) == (b.base, b.args, b.unsigned):
        return "same"
    if a.base == b.base and a.base in ("enum", "set"):
        old, new = enum_members(before), enum_members(after)
        if new[:len(old)] == old and _enum_storage(a.base, len(old)) == _enum_storage(b.base, len(new)):
            return "enum appended"
        return "enum changed"
    if a.family != b.family:
        return "family"
    if a.unsigned != b.unsigned:
        return "narrowed"  # one side's range is not the other's: values outside it are refused
    if b.scale() < a.scale() or b.width() - b.scale() < a.width() - a.scale():
        return "narrowed"  # fewer digits after, or before, the point"
    if (a.base == b.base == "varchar"
            and varchar_length_bytes(before, charset_before) == varchar_length_bytes(after, charset_after)):
        return "varchar extended in place"
    return "widened"
