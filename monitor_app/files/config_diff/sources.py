"""Reading a config file and everything it includes, as hostile input.

All files of one parse share a single byte budget (`max_bytes`), so an include of a 10 GB file or
of `/dev/zero`, or a directory of a million small files, costs no more than one large config.
Only regular files are read (a FIFO would block forever), opened non-blocking so even the open
cannot hang. Nesting is limited to the depth PostgreSQL allows (10) and a file that is already
being read is refused, so include cycles end with an error instead of recursion.

Bytes are decoded as UTF-8 with `surrogateescape`: bad bytes never stop a parse, and secrets
containing them still hash from their real bytes (see `redaction`). A NUL byte means the file is
not text at all; it is reported and not parsed, which also keeps garbage files cheap.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from .model import ParsedBuilder

MAX_DEPTH = 10
# Scanning a directory of this many entries already says something is wrong with it.
MAX_DIR_ENTRIES = 10_000
_READ_CHUNK = 1 << 20

# (text, file label, directory that relative includes resolve against, include depth)
ParseText = Callable[[str, str, str | None, int], None]


def read_bounded(path: str, limit: int) -> bytes:
    """Up to `limit + 1` bytes of a regular file, so the caller can tell it was cut."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, "is a directory", path)
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class ConfigSources:
    """The top file or text and its includes, parsed through one kind-specific callback."""

    def __init__(self, builder: ParsedBuilder, max_bytes: int) -> None:
        self.builder = builder
        self.max_bytes = max(0, max_bytes)
        self.remaining = self.max_bytes
        self._active: list[str] = []  # real paths being parsed, outermost first

    def parse_top_file(self, path: str, parse: ParseText) -> None:
        data = read_bounded(path, self.remaining)  # OSError here is the caller's to see
        self._parse_data(data, path, os.path.realpath(path), os.path.dirname(os.path.abspath(path)), 0, parse)

    def parse_top_text(self, text: str, base_dir: str | None, parse: ParseText) -> None:
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode("utf-8", "replace")
        decoded = self._decode(data, "<text>")
        if decoded is not None:
            parse(decoded, "<text>", os.path.abspath(base_dir) if base_dir is not None else None, 0)

    def include_file(self, target: str, *, directory: str | None, file: str, line: int, depth: int,
                     missing_ok: bool, parse: ParseText) -> None:
        path = self._resolve(target, directory, file, line)
        if path is None:
            return
        if depth + 1 > MAX_DEPTH:
            self.builder.error(file, line, f"includes nested deeper than {MAX_DEPTH} levels; {path} not read")
            return
        real = os.path.realpath(path)
        if real in self._active:
            self.builder.error(file, line, f"include cycle: {path} is already being read")
            return
        if self.remaining <= 0:
            self.builder.error(file, line, f"read limit of {self.max_bytes} bytes reached; {path} not read")
            return
        try:
            data = read_bounded(path, self.remaining)
        except FileNotFoundError:
            if not missing_ok:
                self.builder.error(file, line, f"included file {path} does not exist")
            return
        except OSError as exc:
            self.builder.error(file, line, f"cannot read included file {path}: {exc.strerror or exc}")
            return
        self._parse_data(data, path, real, os.path.dirname(path), depth + 1, parse)

    def include_dir(self, target: str, *, directory: str | None, file: str, line: int, depth: int,
                    suffixes: tuple[str, ...], parse: ParseText) -> None:
        path = self._resolve(target, directory, file, line)
        if path is None:
            return
        names: list[str] = []
        try:
            with os.scandir(path) as listing:
                for entry in listing:
                    if len(names) >= MAX_DIR_ENTRIES:
                        self.builder.error(file, line, f"include directory {path} has more than "
                                                       f"{MAX_DIR_ENTRIES} entries; the rest is ignored")
                        break
                    if not entry.name.startswith(".") and entry.name.endswith(suffixes):
                        names.append(entry.name)
        except OSError as exc:
            self.builder.error(file, line, f"cannot open include directory {path}: {exc.strerror or exc}")
            return
        # C-locale order, as PostgreSQL sorts: by bytes, not by the reader's locale.
        for name in sorted(names, key=os.fsencode):
            full = os.path.join(path, name)
            if os.path.isfile(full):
                self.include_file(full, directory=path, file=file, line=line, depth=depth,
                                  missing_ok=False, parse=parse)

    def _resolve(self, target: str, directory: str | None, file: str, line: int) -> str | None:
        if directory is None:
            # Text handed over without a base directory may come from another machine or a
            # container: its paths do not name files here, so they are not followed.
            self.builder.error(file, line, "include not followed: the text was given without a base directory")
            return None
        if not target:
            self.builder.error(file, line, "include with an empty file name")
            return None
        return os.path.normpath(os.path.join(directory, target))

    def _parse_data(self, data: bytes, path: str, real: str, directory: str, depth: int,
                    parse: ParseText) -> None:
        self.builder.file_read(path)
        text = self._decode(data, path)
        if text is None:
            return
        self._active.append(real)
        try:
            parse(text, path, directory, depth)
        finally:
            self._active.pop()

    def _decode(self, data: bytes, file: str) -> str | None:
        if len(data) > self.remaining:
            # Cut at a line end so no half line (or half character) is parsed.
            cut = data.rfind(b"\n", 0, self.remaining) + 1
            self.builder.error(file, data.count(b"\n", 0, cut) + 1,
                               f"file exceeds the read limit of {self.max_bytes} bytes; "
                               f"only its first {cut} bytes were parsed")
            data = data[:cut]
        self.remaining -= len(data)
        nul = data.find(b"\x00")
        if nul >= 0:
            self.builder.error(file, data.count(b"\n", 0, nul) + 1, "binary content (NUL byte); file not parsed")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.builder.error(file, data.count(b"\n", 0, exc.start) + 1,
                               "not valid UTF-8; undecodable bytes are shown as \\xNN escapes")
            return data.decode("utf-8", "surrogateescape")
