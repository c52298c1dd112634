"""One series from a CSV file with a `timestamp,value` header, for the offline commands.

The file is somebody's export, so every line is checked: a bad one is named by its number and
what is wrong with it, and nothing is guessed (no sorting, no dropping duplicates).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone

from monitor_app.errors import DbmonError

MAX_BYTES = 200 * 1024 * 1024


class SeriesFileError(DbmonError):
    permanent = True


def _timestamp(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def parse(text: str, source: str = "input") -> list[tuple[float, float]]:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None:
        raise SeriesFileError(f"{source}: empty file; expected a header line 'timestamp,value'")
    if [h.strip().lower() for h in header] != ["timestamp", "value"]:
        raise SeriesFileError(f"{source}, line 1: expected the header 'timestamp,value', got {','.join(header)[:80]!r}")
    points: list[tuple[float, float]] = []
    for row in rows:
        line = rows.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise SeriesFileError(f"{source}, line {line}: expected 2 fields (timestamp,value), got {len(row)}")
        try:
            at = _timestamp(row[0])
        except (ValueError, OverflowError):
            raise SeriesFileError(f"{source}, line {line}: timestamp {row[0][:40]!r} is neither ISO-8601 "
                                  "nor epoch seconds") from None
        try:
            value = float(row[1])
        except ValueError:
            raise SeriesFileError(f"{source}, line {line}: value {row[1][:40]!r} is not a number") from None
        if not (math.isfinite(value) and math.isfinite(at)):
            raise SeriesFileError(f"{source}, line {line}: value and timestamp must be finite")
        if points and at <= points[-1][0]:
            word = "duplicate" if at == points[-1][0] else "unsorted"
            raise SeriesFileError(f"{source}, line {line}: {word} timestamp {row[0].strip()[:40]!r} "
                                  "(timestamps must increase)")
        points.append((at, value))
    if not points:
        raise SeriesFileError(f"{source}: no data lines after the header")
    return points


def read(path: str) -> list[tuple[float, float]]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SeriesFileError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise SeriesFileError(f"{path}: larger than {MAX_BYTES // 2**20} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeriesFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse(text, path)
