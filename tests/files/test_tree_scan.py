"""Reading trees and comparing them with a baseline: what AIDE would list, on real files."""

from __future__ import annotations

import os

from monitor_app.files.compare import compare, event_scope
from monitor_app.files.file_state import Changing, read_state, sha256_of
from monitor_app.files.tree_scan import ScanSpec, display_path, read_paths, scan


def _tree(root):
    (root / "a").mkdir()
    (root / "a" / "one.conf").write_text("x = 1\n")
    (root / "two.log").write_text("hello\n")
    return root


def test_a_scan_sees_every_entry_and_hashes_only_when_asked(tmp_path):
    _tree(tmp_path)
    plain = scan(ScanSpec(str(tmp_path)))
    assert set(plain.states) == {str(tmp_path), f"{tmp_path}/a", f"{tmp_path}/a/one.conf", f"{tmp_path}/two.log"}
    assert all(s.sha256 is None for s in plain.states.values())
    hashed = scan(ScanSpec(str(tmp_path), hash_content=True))
    assert hashed.states[f"{tmp_path}/two.log"].sha256 == \
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert hashed.total_bytes == 12


def test_include_exclude_and_non_recursive(tmp_path):
    _tree(tmp_path)
    only_conf = scan(ScanSpec(str(tmp_path), include=("*.conf",)))
    assert f"{tmp_path}/a/one.conf" in only_conf.states and f"{tmp_path}/two.log" not in only_conf.states
    no_a = scan(ScanSpec(str(tmp_path), exclude=("a",)))
    assert not any(p.startswith(f"{tmp_path}/a") for p in no_a.states)
    flat = scan(ScanSpec(str(tmp_path), recursive=False))
    assert f"{tmp_path}/a" in flat.states and f"{tmp_path}/a/one.conf" not in flat.states


def test_every_change_type_is_found(tmp_path):
    _tree(tmp_path)
    spec = ScanSpec(str(tmp_path), hash_content=True)
    before = scan(spec).states
    (tmp_path / "a" / "one.conf").write_text("x = 2\n")
    os.rename(tmp_path / "two.log", tmp_path / "renamed.log")
    (tmp_path / "new").write_text("n")
    os.chmod(tmp_path / "a", 0o777)
    after = scan(spec, before).states
    found = {(c.type, c.path) for c in compare(before, after)}
    assert found == {("modified", f"{tmp_path}/a/one.conf"), ("moved", f"{tmp_path}/two.log"),
                     ("created", f"{tmp_path}/new"), ("permissions_changed", f"{tmp_path}/a")}
    moved = next(c for c in compare(before, after) if c.type == "moved")
    assert moved.dest == f"{tmp_path}/renamed.log"


def test_a_touch_of_a_hashed_file_is_not_a_change_but_unhashed_it_is(tmp_path):
    _tree(tmp_path)
    hashed, plain = ScanSpec(str(tmp_path), hash_content=True), ScanSpec(str(tmp_path))
    before_h, before_p = scan(hashed).states, scan(plain).states
    os.utime(tmp_path / "two.log", ns=(1, 1))
    assert compare(before_h, scan(hashed, before_h).states) == []
    assert [c.fields for c in compare(before_p, scan(plain).states)] == [["mtime"]]


def test_symlinks_are_recorded_not_followed_so_a_loop_ends(tmp_path):
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path, tmp_path / "d" / "loop")
    os.symlink("/etc/passwd", tmp_path / "outside")
    result = scan(ScanSpec(str(tmp_path), hash_content=True))
    assert result.states[f"{tmp_path}/d/loop"].type == "symlink"
    assert result.states[f"{tmp_path}/outside"].link == "/etc/passwd"
    assert result.states[f"{tmp_path}/outside"].sha256 is None
    assert len(result.states) == 4


def test_names_that_are_not_utf8_are_kept_escaped(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"bad-\xff-name")
    with open(raw, "wb") as fh:
        fh.write(b"\xff\xfe")
    result = scan(ScanSpec(str(tmp_path), hash_content=True))
    key = f"{tmp_path}/bad-\\xff-name"
    assert key in result.states and result.states[key].size == 2
    assert display_path(os.fsdecode(raw)) == key
    key.encode("utf-8")


def test_a_missing_root_is_a_root_error_and_a_fifo_is_not_read(tmp_path):
    assert scan(ScanSpec(str(tmp_path / "nope"))).root_error == "No such file or directory"
    os.mkfifo(tmp_path / "pipe")
    result = scan(ScanSpec(str(tmp_path), hash_content=True))
    assert result.states[f"{tmp_path}/pipe"].type == "other"


def test_a_file_replaced_while_hashed_is_changing_not_hashed(tmp_path):
    path = tmp_path / "f"
    path.write_text("first")
    stale = read_state(str(path))
    path.write_text("second, longer")
    try:
        sha256_of(str(path), stale)
    except Changing:
        pass
    else:
        raise AssertionError("a hash of a file that changed since its stat was returned")


def test_a_tree_over_its_limit_is_truncated(tmp_path):
    for i in range(30):
        (tmp_path / f"f{i}").write_text("x")
    result = scan(ScanSpec(str(tmp_path), max_entries=10))
    assert result.truncated and len(result.states) == 10


def test_reading_only_the_paths_events_named(tmp_path):
    _tree(tmp_path)
    spec = ScanSpec(str(tmp_path))
    before = scan(spec).states
    (tmp_path / "a" / "one.conf").unlink()
    (tmp_path / "a" / "three").write_text("3")
    asked = [f"{tmp_path}/a"]
    partial = read_paths(spec, asked, before)
    changes = compare(before, partial.states, event_scope(asked, before, partial.states))
    assert {(c.type, c.path) for c in changes} == {("deleted", f"{tmp_path}/a/one.conf"),
                                                     ("created", f"{tmp_path}/a/three")}
    outside = read_paths(spec, ["/etc/passwd"], before)
    assert outside.states == {}


def test_what_a_directory_glob_leaves_out_is_left_out_by_event_reads_too(tmp_path):
    _tree(tmp_path)
    (tmp_path / "a" / "deep").mkdir()
    (tmp_path / "a" / "deep" / "x").write_text("x")
    (tmp_path / "wal").mkdir()
    (tmp_path / "wal" / "seg").write_text("s")
    spec = ScanSpec(str(tmp_path), exclude=("a/*", "wal"))
    before = scan(spec).states
    assert set(before) == {str(tmp_path), f"{tmp_path}/a", f"{tmp_path}/two.log"}  # `a` kept, its contents not
    under = [f"{tmp_path}/a/one.conf", f"{tmp_path}/a/deep", f"{tmp_path}/a/deep/x", f"{tmp_path}/wal/seg"]
    assert read_paths(spec, under, before).states == {}
    assert set(read_paths(spec, [f"{tmp_path}/a"], before).states) == {f"{tmp_path}/a"}
    matcher = spec.matcher()
    assert matcher.reached("a", True) and not matcher.walked("a") and matcher.walked("two.log")
    assert not matcher.reached("a/deep/x", False) and not matcher.reached("wal/seg", False)


def test_an_event_on_a_directory_that_globs_do_not_record_does_not_add_it(tmp_path):
    # A config watch: the data directory, not recursive, its config files by name.
    (tmp_path / "base").mkdir()
    (tmp_path / "postgresql.conf").write_text("port = 5432\n")
    spec = ScanSpec(str(tmp_path), recursive=False, include=("postgresql.conf",))
    before = scan(spec).states
    assert set(before) == {str(tmp_path), f"{tmp_path}/postgresql.conf"}
    os.chmod(tmp_path / "base", 0o750)
    asked = [f"{tmp_path}/base"]
    partial = read_paths(spec, asked, before)
    assert partial.states == {} and compare(before, partial.states, event_scope(asked, before, partial.states)) == []
    recursive = ScanSpec(str(tmp_path), include=("*.conf",))
    (tmp_path / "base" / "extra.conf").write_text("x = 1\n")
    assert set(read_paths(recursive, asked, scan(recursive).states).states) == {f"{tmp_path}/base/extra.conf"}
