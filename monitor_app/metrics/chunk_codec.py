"""Packing a series' samples into compact chunks: a few bytes per sample instead of a row each.

A row per sample costs PostgreSQL some 60 bytes with its index; 200 series every 10 s for 48 h
would be a gigabyte. A chunk holds one series over a fixed span. Times are millisecond deltas from
the previous sample (a steady interval repeats the same delta); values are the bits of each float
XORed with the previous one's (a flat or slowly moving series leaves mostly zero bytes). Both arrays
are byte-shuffled (all first bytes, then all second bytes...) so runs of zeros line up, then zlib.

Rollup chunks keep one bucket per width (1 min, 10 min, 1 h): its offset, min, max, sum, last and
count, the same way. Decoding checks lengths: a corrupt payload raises `ChunkError`, never
returns garbage.
"""

from __future__ import annotations

import struct
import zlib
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from operator import xor
from typing import NamedTuple

VERSION = 1
_HEADER = struct.Struct("<BI")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ChunkError(ValueError):
    pass


class Bucket(NamedTuple):
    """The aggregate of the samples in [start, start + width). A tuple: queries build many."""

    start: datetime
    min: float
    max: float
    sum: float
    last: float
    samples: int

    @property
    def avg(self) -> float:
        return self.sum / self.samples


def epoch_ms(at: datetime) -> int:
    return (at - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _shuffle(data: bytes, size: int) -> bytes:
    return b"".join(data[i::size] for i in range(size))


def _unshuffle(data: bytes, size: int) -> bytes:
    n = len(data) // size
    out = bytearray(len(data))
    for i in range(size):
        out[i::size] = data[i * n:(i + 1) * n]
    return bytes(out)


def _xor_floats(values: list[float]) -> bytes:
    n = len(values)
    bits = struct.unpack(f"<{n}Q", struct.pack(f"<{n}d", *values))
    xored = [bits[0]] + list(map(xor, bits[1:], bits)) if n else []
    return _shuffle(struct.pack(f"<{n}Q", *xored), 8)


def _unxor_floats(data: bytes, n: int) -> list[float]:
    bits = accumulate(struct.unpack(f"<{n}Q", _unshuffle(data, 8)), xor)
    return list(struct.unpack(f"<{n}d", struct.pack(f"<{n}Q", *bits)))


def _offsets(times: list[datetime], start: datetime, unit: timedelta) -> list[int]:
    steps = [round((t - start) / unit) for t in times]
    deltas = [b - a for a, b in zip([0] + steps, steps, strict=False)]
    if any(d < 0 or d > 0xFFFFFFFF for d in deltas):
        raise ChunkError("samples must be in time order and inside the chunk's span")
    return deltas


def _times(deltas: tuple[int, ...], start: datetime, unit: timedelta) -> list[datetime]:
    out, at = [], 0
    for d in deltas:
        at += d
        out.append(start + at * unit)
    return out


def encode_samples(start: datetime, samples: list[tuple[datetime, float]]) -> bytes:
    """Samples (time order, at or after `start`) -> payload."""
    n = len(samples)
    deltas = _offsets([t for t, _ in samples], start, timedelta(milliseconds=1))
    body = _shuffle(struct.pack(f"<{n}I", *deltas), 4) + _xor_floats([v for _, v in samples])
    return _HEADER.pack(VERSION, n) + zlib.compress(body, 6)


def sample_columns(start: datetime, payload: bytes) -> tuple[list[int], list[float]]:
    """(epoch milliseconds, values) of a raw chunk: what range queries work on."""
    n, body = _open(payload, 12)
    base = epoch_ms(start)
    times = [base + t for t in accumulate(struct.unpack(f"<{n}I", _unshuffle(body[:4 * n], 4)))]
    return times, _unxor_floats(body[4 * n:], n)


def decode_samples(start: datetime, payload: bytes) -> list[tuple[datetime, float]]:
    times, values = sample_columns(start, payload)
    return [(from_epoch_ms(t), v) for t, v in zip(times, values, strict=True)]


def encode_buckets(start: datetime, buckets: list[Bucket]) -> bytes:
    n = len(buckets)
    deltas = _offsets([b.start for b in buckets], start, timedelta(seconds=1))
    body = (_shuffle(struct.pack(f"<{n}I", *deltas), 4) + _shuffle(struct.pack(f"<{n}I", *(b.samples for b in buckets)), 4)
            + b"".join(_xor_floats([getattr(b, f) for b in buckets]) for f in ("min", "max", "sum", "last")))
    return _HEADER.pack(VERSION, n) + zlib.compress(body, 6)


def bucket_columns(start: datetime, payload: bytes) -> tuple[list[int], list[float], list[float], list[float],
                                                             list[float], tuple[int, ...]]:
    """(epoch milliseconds, mins, maxs, sums, lasts, counts) of a rollup chunk."""
    n, body = _open(payload, 40)
    base = epoch_ms(start)
    times = [base + 1000 * t for t in accumulate(struct.unpack(f"<{n}I", _unshuffle(body[:4 * n], 4)))]
    counts = struct.unpack(f"<{n}I", _unshuffle(body[4 * n:8 * n], 4))
    lo, hi, total, last = (_unxor_floats(body[8 * n + 8 * n * i:8 * n + 8 * n * (i + 1)], n) for i in range(4))
    return times, lo, hi, total, last, counts


def decode_buckets(start: datetime, payload: bytes) -> list[Bucket]:
    times, *columns = bucket_columns(start, payload)
    return [Bucket(from_epoch_ms(t), *row) for t, *row in zip(times, *columns, strict=True)]


def _open(payload: bytes, bytes_per_item: int) -> tuple[int, bytes]:
    try:
        version, n = _HEADER.unpack_from(payload)
        body = zlib.decompress(payload[_HEADER.size:])
    except (struct.error, zlib.error) as exc:
        raise ChunkError(f"unreadable chunk: {exc}") from None
    if version != VERSION or len(body) != n * bytes_per_item:
        raise ChunkError(f"chunk version {version} with {len(body)} bytes for {n} items")
    return n, body
