"""check_format against real dumps: pg_dump (custom, directory, plain) of a throwaway database on
the real PostgreSQL, compressed and archived with the real gzip, xz, bzip2, zstd and tar."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tracemalloc
import zlib
from pathlib import Path

import pytest

from monitor_app.files.backup_format import check_format, find_pg_restore, sniff, sql_end_marker
from tests.services import create_pg_database, drop_pg_database, missing

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(f"the {name} command")
    return found


def _cut(source: Path, target: Path, keep: int) -> Path:
    target.write_bytes(source.read_bytes()[:keep])
    return target


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> dict[str, Path]:
    """One database dumped three ways; dropped as soon as the dumps are written."""
    if not (PG_BIN / "pg_dump").exists():
        missing(f"pg_dump in {PG_BIN}")
    name, url = create_pg_database("dbmon_backup_format")
    out = tmp_path_factory.mktemp("dumps")
    try:
        subprocess.run([str(PG_BIN / "psql"), "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                        "CREATE TABLE orders (id int PRIMARY KEY, note text);"
                        "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 20000) g;"
                        "CREATE INDEX ON orders (note); CREATE VIEW recent AS SELECT * FROM orders WHERE id > 10;"],
                       check=True, capture_output=True, timeout=30)
        for fmt, target in (("c", "db.dump"), ("d", "db.dir"), ("p", "db.sql")):
            subprocess.run([str(PG_BIN / "pg_dump"), f"-F{fmt}", "-f", str(out / target), url],
                           check=True, capture_output=True, timeout=60)
    finally:
        drop_pg_database(name)
    return {"custom": out / "db.dump", "directory": out / "db.dir", "plain": out / "db.sql"}


def _toc_entries(detail: str) -> int:
    found = re.search(r"(\d+) TOC entries", detail)
    assert found, detail
    return int(found.group(1))


def test_a_valid_custom_dump_lists_its_toc(dumps):
    result = check_format(str(dumps["custom"]))
    assert (result.ok, result.format) == (True, "pg_custom")
    # A table, its data, its primary key, an index and a view at least.
    assert _toc_entries(result.detail) >= 5


def test_a_custom_dump_cut_in_half_is_corrupt_though_its_toc_still_lists(dumps, tmp_path):
    half = _cut(dumps["custom"], tmp_path / "half.dump", dumps["custom"].stat().st_size // 2)
    assert subprocess.run([find_pg_restore(), "--list", str(half)], capture_output=True).returncode == 0
    result = check_format(str(half))
    assert (result.ok, result.format) == (False, "pg_custom")
    assert "end of file" in result.detail


def test_a_custom_dump_over_max_read_bytes_is_listed_but_not_fully_checked(dumps):
    result = check_format(str(dumps["custom"]), max_read_bytes=1024)
    assert result.ok is None
    assert "not fully checked" in result.detail and _toc_entries(result.detail) >= 5


def test_a_tiny_timeout_kills_pg_restore_and_says_timed_out(dumps):
    result = check_format(str(dumps["custom"]), timeout=0.001)
    assert (result.ok, result.format) == (False, "pg_custom")
    assert "timed out" in result.detail


def test_a_directory_dump_is_checked_including_its_data_files(dumps, tmp_path):
    result = check_format(str(dumps["directory"]))
    assert (result.ok, result.format) == (True, "pg_directory")
    assert _toc_entries(result.detail) >= 5
    broken = tmp_path / "broken.dir"
    shutil.copytree(dumps["directory"], broken)
    for data_file in broken.glob("*.dat.gz"):
        data_file.unlink()
    damaged = check_format(str(broken))
    assert (damaged.ok, damaged.format) == (False, "pg_directory")
    assert ".dat" in damaged.detail


def test_a_directory_without_a_toc_is_not_a_dump(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert check_format(str(tmp_path)).ok is None
    os.mkfifo(tmp_path / "toc.dat")  # opening it must not wait for a writer
    result = check_format(str(tmp_path))
    assert (result.ok, result.format) == (None, "unknown")


def test_a_plain_dump_needs_its_completion_marker(dumps, tmp_path):
    complete = check_format(str(dumps["plain"]))
    assert (complete.ok, complete.format) == (True, "sql")
    text = dumps["plain"].read_bytes()
    truncated = tmp_path / "cut.sql"
    truncated.write_bytes(text[:text.index(b"-- PostgreSQL database dump complete")])
    result = check_format(str(truncated))
    assert (result.ok, result.format) == (False, "sql")
    assert "no completion marker" in result.detail


def test_a_gzipped_plain_dump_is_intact_and_recognised_inside(dumps, tmp_path):
    packed = tmp_path / "db.sql.gz"
    packed.write_bytes(subprocess.run([_tool("gzip"), "-c", str(dumps["plain"])], capture_output=True,
                                      check=True).stdout)
    result = check_format(str(packed))
    assert (result.ok, result.format) == (True, "sql.gz")
    assert str(dumps["plain"].stat().st_size) in result.detail


def test_a_flipped_byte_in_the_middle_of_a_gzip_is_corrupt(dumps, tmp_path):
    data = bytearray(gzip.compress(dumps["plain"].read_bytes()))
    data[len(data) // 2] ^= 0xFF
    flipped = tmp_path / "flipped.gz"
    flipped.write_bytes(bytes(data))
    assert subprocess.run([_tool("gzip"), "-t", str(flipped)], capture_output=True).returncode != 0
    result = check_format(str(flipped))
    assert (result.ok, result.format) == (False, "gzip")


def test_a_truncated_gzip_and_a_gzip_of_a_truncated_dump_are_both_caught(dumps, tmp_path):
    packed = gzip.compress(dumps["plain"].read_bytes())
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[:len(packed) // 2])
    assert check_format(str(cut)).ok is False
    text = dumps["plain"].read_bytes()
    inner_cut = tmp_path / "inner.sql.gz"
    inner_cut.write_bytes(gzip.compress(text[:len(text) // 2]))
    result = check_format(str(inner_cut))
    assert (result.ok, result.format) == (False, "sql.gz")
    assert "no completion marker" in result.detail


def test_concatenated_gzip_members_are_all_read(dumps, tmp_path):
    text = dumps["plain"].read_bytes()
    half = len(text) // 2
    joined = tmp_path / "joined.sql.gz"
    joined.write_bytes(gzip.compress(text[:half]) + gzip.compress(text[half:]))
    assert check_format(str(joined)).ok is True
    joined.write_bytes(gzip.compress(text[:half]) + gzip.compress(text[half:])[:-20])
    assert check_format(str(joined)).ok is False


def test_max_read_bytes_stops_a_gzip_check_without_a_verdict(dumps, tmp_path):
    packed = tmp_path / "db.sql.gz"
    packed.write_bytes(gzip.compress(dumps["plain"].read_bytes()))
    result = check_format(str(packed), max_read_bytes=4096)
    assert (result.ok, result.format) == (None, "gzip")
    assert "not fully checked" in result.detail


def test_a_decompression_bomb_is_read_in_bounded_memory(tmp_path):
    bomb = tmp_path / "zeros.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    with bomb.open("wb") as fh:
        for _ in range(64):
            fh.write(compressor.compress(bytes(1 << 20)))
        fh.write(compressor.flush())
    tracemalloc.start()
    try:
        result = check_format(str(bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.ok is True and str(64 << 20) in result.detail
    assert peak < 8 << 20


@pytest.mark.parametrize(("tool", "kind", "suffix"), [("xz", "xz", "sql.xz"), ("bzip2", "bzip2", "sql.bz2")])
def test_xz_and_bzip2_are_streamed_to_their_end(dumps, tmp_path, tool, kind, suffix):
    packed = subprocess.run([_tool(tool), "-c", str(dumps["plain"])], capture_output=True, check=True).stdout
    whole = tmp_path / "whole"
    whole.write_bytes(packed)
    result = check_format(str(whole))
    assert (result.ok, result.format) == (True, suffix)
    cut = tmp_path / "cut"
    cut.write_bytes(packed[:len(packed) // 2])
    result = check_format(str(cut))
    assert (result.ok, result.format) == (False, kind)
    assert "truncated" in result.detail


def test_zstd_is_tested_with_the_zstd_command(dumps, tmp_path):
    packed = subprocess.run([_tool("zstd"), "-q", "-c", str(dumps["plain"])], capture_output=True, check=True).stdout
    whole = tmp_path / "db.zst"
    whole.write_bytes(packed)
    assert check_format(str(whole)).ok is True
    cut = tmp_path / "cut.zst"
    cut.write_bytes(packed[:len(packed) // 2])
    result = check_format(str(cut))
    assert (result.ok, result.format) == (False, "zstd")


def test_a_tar_is_read_to_its_end_blocks(dumps, tmp_path):
    archive = tmp_path / "db.tar"
    subprocess.run([_tool("tar"), "-cf", str(archive), "-C", str(dumps["plain"].parent), "db.sql", "db.dump"],
                   check=True, capture_output=True)
    result = check_format(str(archive))
    assert (result.ok, result.format) == (True, "tar")
    assert "2 members" in result.detail
    mid_member = _cut(archive, tmp_path / "mid.tar", archive.stat().st_size // 3)
    assert check_format(str(mid_member)).ok is False
    # Cut exactly after the first member: every header is whole, only the end blocks are gone.
    first_member_end = 512 + (dumps["plain"].stat().st_size + 511) // 512 * 512
    at_boundary = _cut(archive, tmp_path / "boundary.tar", first_member_end)
    result = check_format(str(at_boundary))
    assert result.ok is False and "end-of-archive" in result.detail


def test_a_gzipped_tar_is_named_for_both(dumps, tmp_path):
    archive = tmp_path / "db.tar.gz"
    subprocess.run([_tool("tar"), "-czf", str(archive), "-C", str(dumps["plain"].parent), "db.sql"],
                   check=True, capture_output=True)
    result = check_format(str(archive))
    assert (result.ok, result.format) == (True, "tar.gz")


def test_format_comes_from_the_bytes_not_the_name(dumps, tmp_path):
    disguised = tmp_path / "db.sql.gz"
    shutil.copy(dumps["custom"], disguised)
    assert check_format(str(disguised)).format == "pg_custom"
    text = tmp_path / "notes.dump"
    text.write_text("not a backup\n")
    result = check_format(str(text))
    assert (result.ok, result.format) == (None, "unknown")


def test_hostile_names_and_paths(dumps, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(dumps["custom"], tmp_path / "-x.dump")  # must not reach pg_restore as an option
    assert check_format("-x.dump").ok is True
    odd = os.path.join(str(tmp_path), os.fsdecode(b"\xff\xfe.dump"))
    shutil.copy(dumps["custom"], odd)
    assert check_format(odd).ok is True
    (tmp_path / "link.dump").symlink_to(dumps["custom"])
    assert check_format(str(tmp_path / "link.dump")).ok is None
    assert check_format(str(tmp_path / "absent.dump")).ok is None
    os.mkfifo(tmp_path / "fifo.dump")
    assert check_format(str(tmp_path / "fifo.dump")).ok is None


def test_mysql_and_mariadb_dumps_are_judged_by_their_end_line():
    mysql = b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n"
    mariadb = b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19-11.4.2-MariaDB\n"
    assert sniff(mysql) == sniff(mariadb) == "sql"
    assert sql_end_marker(mariadb) == b"-- Dump completed"
    assert sniff(b"-- just a comment\n") == "unknown"


def test_the_newest_installed_pg_restore_is_preferred():
    versions = [p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/pg_restore")]
    if not versions:
        missing("a pg_restore under /usr/lib/postgresql")
    newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))
    assert find_pg_restore() == f"/usr/lib/postgresql/{newest}/bin/pg_restore"
