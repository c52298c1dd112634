"""What one SQLite database file says about itself, read without ever writing to it.

Sizes come from `stat` (database, `-wal`, `-shm`); pages, free pages and `user_version` from one
read-only connection (`mode=ro`) that is opened per poll and closed at once, so dbmon holds no
lock or handle between polls and never holds up a checkpoint. Write activity is a counter the
file keeps itself: in rollback-journal mode the header's file change counter (bumped by every
committed write transaction), in WAL mode the WAL index's change counter in `-shm` (bumped by
every commit). `PRAGMA data_version` is no use here: its values only compare within one
connection. Each counter has a life (the file or `-shm` it is read from): a new life drops the
interval, as a server restart does for PostgreSQL.

The integrity check (`PRAGMA quick_check`) reads the whole file, so it runs rarely and within a
time budget: a check that runs out of it is abandoned and reported as unfinished.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from monitor_app.errors import DbmonError

HEADER_MAGIC = b"SQLite format 3\x00"
# How many SQLite virtual-machine steps between looks at the clock during quick_check.
PROGRESS_STEPS = 10_000


@dataclass(frozen=True)
class SqliteReading:
    journal_mode: str
    gauges: dict[str, float]
    write_transactions: float | None  # the file's own counter; None when it keeps none readable
    life: float | None  # identity of that counter's life: which file it is read from, and its inode
    integrity: str | None = None  # quick_check's answer when it ran: "ok" or its first complaint
    problems: list[str] = field(default_factory=list)


def read_file(path: str | Path, *, quick_check: bool = False, check_seconds: float = 5.0,
              timeout: float = 2.0) -> SqliteReading:
    """Read one database file. DbmonError when it is not there or not an SQLite database."""
    path = Path(path)
    try:
        stat = path.stat()
        header = _read_header(path)
    except OSError as exc:
        raise DbmonError(f"SQLite file {path}: {exc.strerror or exc}") from None
    if not header.startswith(HEADER_MAGIC):
        raise DbmonError(f"{path} is not an SQLite database (its header says otherwise)")
    # Before connecting: closing a descriptor of a file drops every POSIX lock this process holds
    # on it, the connection's own included.
    wal_index = _wal_index_changes(Path(f"{path}-shm"))
    gauges = {"sqlite.file_bytes": float(stat.st_size),
              "sqlite.wal_bytes": float(_size(Path(f"{path}-wal"))),
              "sqlite.shm_bytes": float(_size(Path(f"{path}-shm")))}
    conn = _connect(path, timeout)
    try:
        page_size, page_count, free, user_version, mode = (
            conn.execute(f"PRAGMA {pragma}").fetchone()[0]  # nosec B608 - names from the tuple below
            for pragma in ("page_size", "page_count", "freelist_count", "user_version", "journal_mode"))
        integrity, problems = (_quick_check(conn, check_seconds) if quick_check else (None, []))
    except sqlite3.DatabaseError as exc:
        raise DbmonError(f"SQLite file {path}: {exc}") from None
    finally:
        conn.close()
    gauges.update({"sqlite.page_size": float(page_size), "sqlite.page_count": float(page_count),
                   "sqlite.pages_bytes": float(page_size * page_count), "sqlite.freelist_pages": float(free),
                   "sqlite.freelist_ratio": free / page_count if page_count else 0.0,
                   "sqlite.user_version": float(user_version)})
    if integrity is not None:
        gauges["sqlite.integrity_ok"] = 1.0 if integrity == "ok" else 0.0
    if quick_check:
        gauges["sqlite.integrity_check_abandoned"] = 0.0 if integrity is not None else 1.0
    mode = str(mode).lower()
    if mode == "wal":
        writes, life = wal_index
    else:
        writes, life = float(struct.unpack(">I", header[24:28])[0]), float(stat.st_ino) * 2
    return SqliteReading(mode, gauges, writes, life, integrity, problems)


def _read_header(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(100)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    # as_uri() escapes what a file name may hold ('?', '#', '%'); mode=ro never creates or writes.
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise DbmonError(f"cannot open SQLite file {path} read-only: {exc}") from None


def _quick_check(conn: sqlite3.Connection, seconds: float) -> tuple[str | None, list[str]]:
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)  # non-zero aborts
    try:
        first = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc).lower():
            return None, [f"quick_check did not finish within {seconds:g} s; abandoned"]
        raise
    finally:
        conn.set_progress_handler(None, 0)
    return (str(first[0]) if first else "ok"), []


def _wal_index_changes(shm: Path) -> tuple[float | None, float | None]:
    """The WAL index header's change counter (bytes 8-11, the writer's byte order) and `-shm`'s inode.

    No `-shm` means no connection has the database open in WAL mode right now: the last one to
    close removed it, and what was written before that is not counted."""
    try:
        with open(shm, "rb") as f:
            head = f.read(48)
            inode = os.fstat(f.fileno()).st_ino
    except OSError:
        return None, None
    if len(head) < 48 or head[12] != 1:  # isInit: a header being rebuilt is not read
        return None, None
    return float(struct.unpack("=I", head[8:12])[0]), float(inode) * 2 + 1  # odd: never a database file's life
