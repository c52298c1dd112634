"""Whether a backup file reads back as what its first bytes say it is.

The format comes from magic bytes, never from the name. Each check reads the archive to its
end the way a restore would, because truncation and flipped bytes are only found by reading
past them: `pg_restore --list` reads the table of contents at the head of a custom-format dump
and passes one cut in half, so a second pass (`pg_restore --file=/dev/null`) reads every data
block. Compressed files are decompressed chunk by chunk and the output thrown away (the CRC and
the end-of-stream mark are what matter); plain SQL dumps are judged by the completion marker
pg_dump and mysqldump write last.

Bounds: memory is one chunk at a time (pg_restore's output is counted, not kept); a file over
`max_read_bytes` is not read past that (`ok=None`, "not fully checked"); `timeout` is the wall
time of the whole check. `ok=False` means evidence of damage. Running out of time reading a large,
healthy archive is no such evidence, so it is `ok=None`; only a `pg_restore --list` that does not
finish in time (it reads a few KiB of TOC, so it has hung) is `ok=False`, "timed out".
"""

from __future__ import annotations

import bz2
import glob
import lzma
import os
import re
import selectors
import shutil
import stat
import subprocess
import tarfile
import time
import zlib
from dataclasses import dataclass
from itertools import islice

CHUNK = 1 << 20
HEAD_BYTES = 512
TAIL_BYTES = 4096
MAX_LIST_BYTES = 8 << 20  # pg_restore --list output: about 100,000 TOC entries
MAX_STDERR_BYTES = 64 << 10
MAX_TAR_METADATA = 1 << 20  # a pax or GNU long-name header is read whole by tarfile
MAX_DIRECTORY_ENTRIES = 100_000
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin/pg_restore"

_SQL_DUMP = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:(?P<pg>--\r?\n-- PostgreSQL database (?P<cluster>cluster )?dump)"
    # mariadb-dump from 2024 on writes a sandbox-mode line before its banner.
    rb"|(?:/\*M!999999\\- enable the sandbox mode \*/\s*)?-- (?:MySQL|MariaDB) dump)")
_TOC_ENTRY = re.compile(rb"\d+;")
_MAGIC = ((b"PGDMP", "pg_custom"), (b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
_SUFFIX = {"gzip": "gz", "bzip2": "bz2", "xz": "xz"}
# A path swapped for a symlink is not followed; a FIFO put in its place cannot hang the open.
_NO_FOLLOW_NO_WAIT = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_NOT_READABLE = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, tarfile.TarError)


@dataclass(frozen=True)
class FormatCheck:
    ok: bool | None  # None: no check exists for this format, or it could not be completed
    format: str
    detail: str


class _Stopped(Exception):
    """The read budget or the deadline ran out before the end of the file."""


class _Limits:
    def __init__(self, timeout: float, budget: int | None):
        self.timeout, self.budget = timeout, budget
        self.deadline = time.monotonic() + max(timeout, 0.0)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def timed_out(self) -> str:
        return f"timed out after {self.timeout:g}s"


class _Reader:
    """A file read front to back that stops at the byte budget or the deadline."""

    def __init__(self, fd: int, limits: _Limits):
        self.fd, self.limits, self.offset = fd, limits, 0

    def read(self, size: int = CHUNK) -> bytes:
        if self.limits.remaining() <= 0:
            raise _Stopped(self.limits.timed_out())
        if self.limits.budget is not None:
            if self.offset >= self.limits.budget:
                raise _Stopped(f"stopped after max_read_bytes ({self.limits.budget} bytes)")
            size = min(size, self.limits.budget - self.offset)
        data = os.read(self.fd, min(size, CHUNK))
        self.offset += len(data)
        return data


def sql_end_marker(head: bytes) -> bytes | None:
    """The line a complete plain SQL dump starting with `head` ends with; None if it is not one."""
    found = _SQL_DUMP.match(head)
    if found is None:
        return None
    if found["cluster"]:
        return b"-- PostgreSQL database cluster dump complete"
    return b"-- PostgreSQL database dump complete" if found["pg"] else b"-- Dump completed"


def sniff(head: bytes) -> str:
    """The format the first bytes of a file announce."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return "bzip2"
    if head[257:262] == b"ustar":
        return "tar"
    return "sql" if sql_end_marker(head) else "unknown"


def check_format(path: str, *, timeout: float = 60.0, max_read_bytes: int | None = None) -> FormatCheck:
    """Read `path` (a file, or a pg_dump directory) to its end as its format says; never raises."""
    limits = _Limits(timeout, max_read_bytes)
    path = os.path.abspath(path)  # a name starting with "-" must never reach a tool as an option
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            return _check_directory(path, limits)
        fd = os.open(path, os.O_RDONLY | _NO_FOLLOW_NO_WAIT)
    except OSError as exc:
        return FormatCheck(None, "unknown", f"cannot read: {exc.strerror or exc}")
    kind = "unknown"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return FormatCheck(None, "unknown", "not a regular file")
        head = os.pread(fd, HEAD_BYTES, 0)
        kind = sniff(head)
        if kind == "pg_custom":
            return _check_pg_archive(path, "pg_custom", "custom-format dump", st.st_size, limits)
        if kind == "zstd":
            return _check_zstd(path, st.st_size, limits)
        if kind in _SUFFIX:
            return _check_compressed(_Reader(fd, limits), kind)
        if kind == "tar":
            return _check_tar(fd, st.st_size, limits)
        if kind == "sql":
            tail = os.pread(fd, TAIL_BYTES, max(0, st.st_size - TAIL_BYTES))
            return _sql_result("sql", "plain SQL dump", head, tail)
        return FormatCheck(None, "unknown", "no check for this format")
    except _Stopped as exc:
        return FormatCheck(None, kind, f"not fully checked: {exc}; no damage found before that")
    except _NOT_READABLE as exc:
        return FormatCheck(False, kind, f"unreadable as {kind}: {exc}"[:300])
    finally:
        os.close(fd)


def _sql_result(fmt: str, label: str, head: bytes, tail: bytes) -> FormatCheck:
    marker = sql_end_marker(head)
    if marker is not None and marker in tail:
        return FormatCheck(True, fmt, f"{label}, completion marker present")
    return FormatCheck(False, fmt, f"{label}: no completion marker: truncated?")


def _tar_end_present(tail: bytes) -> bool:
    """Two zero blocks end a tar archive; without them it stopped at a member boundary."""
    return len(tail) >= 1024 and not tail[-1024:].strip(b"\0")


def _outputs(decompressor, data: bytes):
    """Decompressed pieces of `data`, none larger than CHUNK (a small bomb stays small)."""
    if hasattr(decompressor, "unconsumed_tail"):  # zlib keeps unread input aside instead of buffering it
        out = decompressor.decompress(data, CHUNK)
        yield out
        while not decompressor.eof and (decompressor.unconsumed_tail or len(out) == CHUNK):
            out = decompressor.decompress(decompressor.unconsumed_tail, CHUNK)
            yield out
        return
    yield decompressor.decompress(data, CHUNK)
    while not decompressor.eof and not decompressor.needs_input:
        yield decompressor.decompress(b"", CHUNK)


def _new_decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    return bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()


def _check_compressed(reader: _Reader, kind: str) -> FormatCheck:
    """Decompress every stream (pigz and `cat a.gz b.gz` make several), tolerating zero padding."""
    decompressor = _new_decompressor(kind)
    head, tail, produced = b"", b"", 0
    while data := reader.read(CHUNK):
        while data:
            if decompressor.eof:
                data = data.lstrip(b"\0")
                if not data:
                    break
                decompressor = _new_decompressor(kind)
            for out in _outputs(decompressor, data):
                if reader.limits.remaining() <= 0:
                    raise _Stopped(reader.limits.timed_out())
                produced += len(out)
                if len(head) < HEAD_BYTES:
                    head += out[:HEAD_BYTES - len(head)]
                tail = (tail + out)[-TAIL_BYTES:]
            data = decompressor.unused_data if decompressor.eof else b""
    if not decompressor.eof:
        return FormatCheck(False, kind, f"{kind} stream ends early: truncated?")
    inner = sniff(head)
    fmt = f"{inner}.{_SUFFIX[kind]}" if inner != "unknown" else kind
    label = f"{kind} ({produced} bytes uncompressed)"
    if inner == "sql":
        return _sql_result(fmt, f"{label} of a plain SQL dump", head, tail)
    if inner == "tar" and not _tar_end_present(tail):
        return FormatCheck(False, fmt, f"{label} of a tar archive without end-of-archive blocks: truncated?")
    return FormatCheck(True, fmt, f"{label}, stream intact")


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads a pax or long-name header into memory whole: refuse one of absurd size."""

    def _proc_member(self, tar):
        if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                         tarfile.GNUTYPE_LONGLINK) and self.size > MAX_TAR_METADATA:
            raise tarfile.ReadError(f"extended header of {self.size} bytes")
        return super()._proc_member(tar)


def _check_tar(fd: int, size: int, limits: _Limits) -> FormatCheck:
    members = 0
    with tarfile.open(fileobj=_Reader(fd, limits), mode="r|", tarinfo=_BoundedTarInfo) as archive:  # type: ignore[call-overload]
        for _ in archive:
            members += 1
    if not _tar_end_present(os.pread(fd, 1024, max(0, size - 1024))):
        return FormatCheck(False, "tar", f"tar archive, {members} members, no end-of-archive blocks: truncated?")
    return FormatCheck(True, "tar", f"tar archive, {members} members")


def find_pg_restore() -> str | None:
    """Newest installed version first: it reads every older archive, an older one refuses newer."""
    versioned = []
    for candidate in glob.glob(PG_BIN_GLOB):
        version = candidate.split("/")[-3]
        if os.access(candidate, os.X_OK):
            versioned.append((tuple(int(p) for p in version.split(".") if p.isdigit()), candidate))
    return max(versioned)[1] if versioned else shutil.which("pg_restore")


@dataclass
class _Run:
    returncode: int | None  # None: killed at the deadline
    toc_entries: int = 0
    stderr: bytes = b""
    overflow: bool = False

    def first_error(self) -> str:
        lines = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return (lines[0] if lines else f"exit status {self.returncode}")[:300]


def _run(argv: list[str], limits: _Limits) -> _Run:
    """Run a checker without a shell or stdin; count TOC lines on stdout, keep the head of stderr."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "LC_ALL": "C"})
    assert proc.stdout is not None and proc.stderr is not None
    selector = selectors.DefaultSelector()
    result = _Run(None)
    partial = b""
    read = 0
    try:
        for pipe in (proc.stdout, proc.stderr):
            os.set_blocking(pipe.fileno(), False)
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            if limits.remaining() <= 0:
                return result
            for key, _ in selector.select(limits.remaining()):
                data = os.read(key.fd, CHUNK)
                if not data:
                    selector.unregister(key.fileobj)
                elif key.fileobj is proc.stdout:
                    read += len(data)
                    if read > MAX_LIST_BYTES:
                        result.overflow = True
                        return result
                    lines = (partial + data).split(b"\n")
                    partial = lines.pop()[:64]  # only the start of a line tells an entry
                    result.toc_entries += sum(1 for line in lines if _TOC_ENTRY.match(line))
                elif len(result.stderr) < MAX_STDERR_BYTES:
                    result.stderr += data[:MAX_STDERR_BYTES - len(result.stderr)]
        try:  # its output closed, it is exiting: a moment's grace, not a "timed out" for a finished check
            result.returncode = proc.wait(max(limits.remaining(), 0.5))
        except subprocess.TimeoutExpired:
            pass
        return result
    finally:
        selector.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _check_pg_archive(path: str, fmt: str, label: str, size: int, limits: _Limits) -> FormatCheck:
    exe = find_pg_restore()
    if exe is None:
        return FormatCheck(None, fmt, f"{label}; pg_restore not found, not checked")
    try:
        listing = _run([exe, "--list", path], limits)
        if listing.returncode is None and not listing.overflow:
            return FormatCheck(False, fmt, f"{limits.timed_out()} listing the {label}")
        if listing.overflow:
            return FormatCheck(None, fmt, f"{label}: TOC listing over {MAX_LIST_BYTES >> 20} MiB, not checked")
        if listing.returncode != 0:
            return _pg_restore_failed(fmt, listing)
        summary = f"{label}, {listing.toc_entries} TOC entries"
        if limits.budget is not None and size > limits.budget:
            return FormatCheck(None, fmt, f"{summary}; data not read (over max_read_bytes): not fully checked")
        data = _run([exe, f"--file={os.devnull}", path], limits)
    except OSError as exc:
        return FormatCheck(None, fmt, f"{label}; cannot run pg_restore: {exc.strerror or exc}")
    if data.returncode is None:
        return FormatCheck(None, fmt, f"{summary}; data not fully checked: {limits.timed_out()}")
    if data.returncode != 0:
        return _pg_restore_failed(fmt, data)
    return FormatCheck(True, fmt, summary)


def _pg_restore_failed(fmt: str, run: _Run) -> FormatCheck:
    message = run.first_error()
    if "unsupported version" in message:  # a dump from a newer PostgreSQL than any pg_restore here
        return FormatCheck(None, fmt, f"{message} (pg_restore too old to check it)")
    return FormatCheck(False, fmt, message)


def _check_directory(path: str, limits: _Limits) -> FormatCheck:
    """A pg_dump -Fd directory: toc.dat (a custom-format header) and one data file per table."""
    toc = os.path.join(path, "toc.dat")
    try:
        with open(toc, "rb", opener=lambda p, f: os.open(p, f | _NO_FOLLOW_NO_WAIT)) as handle:
            is_dump = stat.S_ISREG(os.fstat(handle.fileno()).st_mode) and handle.read(5) == b"PGDMP"
        with os.scandir(path) as entries:  # sizes only weigh the directory against max_read_bytes
            size = sum(entry.stat(follow_symlinks=False).st_size for entry in islice(entries, MAX_DIRECTORY_ENTRIES)
                       if entry.is_file(follow_symlinks=False))
    except OSError as exc:
        return FormatCheck(None, "unknown", f"a directory without a readable toc.dat: {exc.strerror or exc}")
    if not is_dump:
        return FormatCheck(None, "unknown", "a directory whose toc.dat is not a pg_dump TOC")
    return _check_pg_archive(path, "pg_directory", "directory-format dump", size, limits)


def _check_zstd(path: str, size: int, limits: _Limits) -> FormatCheck:
    exe = shutil.which("zstd")
    if exe is None:
        return FormatCheck(None, "zstd", "zstd not installed, not checked")
    if limits.budget is not None and size > limits.budget:
        return FormatCheck(None, "zstd", "not fully checked: larger than max_read_bytes")
    try:
        run = _run([exe, "--test", "--quiet", "--", path], limits)
    except OSError as exc:
        return FormatCheck(None, "zstd", f"cannot run zstd: {exc.strerror or exc}")
    if run.returncode is None:
        return FormatCheck(None, "zstd", f"not fully checked: {limits.timed_out()}")
    if run.returncode != 0:
        return FormatCheck(False, "zstd", run.first_error())
    return FormatCheck(True, "zstd", "zstd stream intact")
