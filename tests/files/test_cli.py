"""`dbmon files baseline | check | diff-config` on real trees and files: in-process through click's
runner, and twice through a real `python -m monitor_app.cli.main` process."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor_app.cli.files import files as files_group

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


@pytest.fixture()
def dbmon_files():
    runner = CliRunner()
    return lambda *args: runner.invoke(files_group, [str(a) for a in args])


def assert_trouble(result, *fragments: str) -> None:
    """Exit 2 with a message on stderr, nothing on stdout, and no exception escaping."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == "" and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


@pytest.fixture()
def tree(tmp_path) -> Path:
    root = tmp_path / "etc"
    (root / "conf.d").mkdir(parents=True)
    (root / "postgresql.conf").write_text("shared_buffers = 128MB\n")
    (root / "conf.d" / "tuning.conf").write_text("work_mem = 4MB\n")
    (root / "pg_hba.conf").write_text("local all all peer\n")
    (root / "old.log").write_text("x\n")
    return root


def baseline_of(dbmon_files, root: Path, out: Path, *extra) -> Path:
    result = dbmon_files("baseline", root, "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return out


def listed(result, root: Path) -> set[tuple]:
    """(type, path under root, dest under root) of each change in a JSON check."""
    def rel(p):
        return None if p is None else os.path.relpath(p, root)
    return {(c["type"], rel(c["path"]), rel(c.get("dest"))) for c in json.loads(result.stdout)}


def test_an_unchanged_tree_checks_clean_even_after_a_touch(dbmon_files, tree, tmp_path):
    base = baseline_of(dbmon_files, tree, tmp_path / "base.json")
    os.utime(tree / "postgresql.conf", ns=(1, 1))  # the hash, not the mtime, says what changed
    as_json = dbmon_files("check", tree, "--baseline", base, "--format", "json")
    assert (as_json.exit_code, json.loads(as_json.stdout)) == (0, [])
    as_text = dbmon_files("check", tree, "--baseline", base)
    assert (as_text.exit_code, as_text.stdout) == (0, "")
    assert "0 change(s) in 6 entries" in as_text.stderr


def _change_everything(tree: Path) -> None:
    (tree / "postgresql.conf").write_text("shared_buffers = 256MB\n")
    (tree / "pg_hba.conf").unlink()
    (tree / "conf.d" / "new.conf").write_text("x = 1\n")
    os.chmod(tree / "conf.d" / "tuning.conf", 0o600)
    os.rename(tree / "old.log", tree / "old.log.1")


EVERY_CHANGE = {("modified", "postgresql.conf", None), ("deleted", "pg_hba.conf", None),
                ("created", "conf.d/new.conf", None), ("permissions_changed", "conf.d/tuning.conf", None),
                ("moved", "old.log", "old.log.1")}


def test_each_kind_of_change_is_listed_exactly_in_json(dbmon_files, tree, tmp_path):
    base = baseline_of(dbmon_files, tree, tmp_path / "base.json")
    _change_everything(tree)
    result = dbmon_files("check", tree, "--baseline", base, "--format", "json")
    assert result.exit_code == 1
    assert listed(result, tree) == EVERY_CHANGE
    by_type = {c["type"]: c for c in json.loads(result.stdout)}
    assert by_type["modified"]["fields"] == ["sha256"]
    perms = by_type["permissions_changed"]
    assert (perms["fields"], stat.S_IMODE(perms["new"]["mode"])) == (["mode"], 0o600)
    assert perms["old"]["mode"] != 0o600
    assert by_type["created"]["old"] is None and by_type["deleted"]["new"] is None


def test_each_kind_of_change_is_a_line_of_text(dbmon_files, tree, tmp_path):
    base = baseline_of(dbmon_files, tree, tmp_path / "base.json")
    _change_everything(tree)
    result = dbmon_files("check", tree, "--baseline", base)
    assert result.exit_code == 1
    lines = [line.split() for line in result.stdout.splitlines()]
    seen = {(w[0], os.path.relpath(w[1], tree), os.path.relpath(w[3], tree) if len(w) > 3 and w[2] == "->" else None)
            for w in lines}
    assert len(lines) == len(EVERY_CHANGE) and seen == EVERY_CHANGE
    assert "5 change(s)" in result.stderr


def test_content_changed_behind_a_restored_mtime_is_found(dbmon_files, tree, tmp_path):
    conf = tree / "postgresql.conf"
    base = baseline_of(dbmon_files, tree, tmp_path / "base.json")
    before = conf.stat()
    with open(conf, "r+") as f:  # same inode, same size
        f.write("shared_buffers = 999MB\n")
    os.utime(conf, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = dbmon_files("check", tree, "--baseline", base, "--format", "json")
    assert result.exit_code == 1
    assert [(c["type"], c["fields"]) for c in json.loads(result.stdout)] == [("modified", ["sha256"])]


def test_without_hashes_size_and_mtime_decide(dbmon_files, tree, tmp_path):
    base = baseline_of(dbmon_files, tree, tmp_path / "base.json", "--no-hash")
    assert not any("sha256" in e for e in json.loads(base.read_text())["entries"].values())
    (tree / "postgresql.conf").write_text("shared_buffers = 1GB # longer\n")
    result = dbmon_files("check", tree, "--baseline", base, "--format", "json")
    (change,) = json.loads(result.stdout)
    assert (result.exit_code, change["type"], sorted(change["fields"])) == (1, "modified", ["mtime", "size"])


def test_a_single_file_is_a_tree_of_one(dbmon_files, tree, tmp_path):
    conf = tree / "postgresql.conf"
    base = baseline_of(dbmon_files, conf, tmp_path / "base.json")
    assert list(json.loads(base.read_text())["entries"]) == [str(conf)]
    assert dbmon_files("check", conf, "--baseline", base).exit_code == 0
    conf.write_text("shared_buffers = 1GB\n")
    result = dbmon_files("check", conf, "--baseline", base, "--format", "json")
    assert (result.exit_code, listed(result, tree)) == (1, {("modified", "postgresql.conf", None)})


def test_a_baseline_of_another_root_is_refused_naming_both(dbmon_files, tree, tmp_path):
    base = baseline_of(dbmon_files, tree, tmp_path / "base.json")
    other = tmp_path / "other"
    other.mkdir()
    assert_trouble(dbmon_files("check", other, "--baseline", base), str(tree), str(other), str(base))


def test_the_baseline_file_inside_its_tree_is_not_part_of_it(dbmon_files, tree):
    base = baseline_of(dbmon_files, tree, tree / "base.json")
    assert str(base) not in json.loads(base.read_text())["entries"]
    result = dbmon_files("check", tree, "--baseline", base, "--format", "json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    baseline_of(dbmon_files, tree, base)  # taken again over the old one
    assert dbmon_files("check", tree, "--baseline", base).exit_code == 0


def _entry() -> dict:
    return {"type": "file", "size": 1, "mode": 0o644, "uid": 0, "gid": 0, "inode": 1, "dev": 1, "mtime_ns": 1}


BROKEN_BASELINES = {
    "invalid JSON": ("{not json", "invalid JSON"),
    "nested too deeply": ("[" * 100_000 + "]" * 100_000, "invalid JSON"),
    "another format": (json.dumps({"format": "aide/1", "spec": {}, "entries": {}}), "format is not"),
    "entries not an object": (lambda d: {**d, "entries": []}, "entries must be objects"),
    "entry not an object": (lambda d: {**d, "entries": {"/x": "file"}}, "'/x': not an object"),
    "entry of no known type": (lambda d: {**d, "entries": {"/x": {**_entry(), "type": "fifo"}}}, "type must be"),
    "size not a number": (lambda d: {**d, "entries": {"/x": {**_entry(), "size": "12"}}}, "size must be"),
    "a boolean for a number": (lambda d: {**d, "entries": {"/x": {**_entry(), "mode": True}}}, "mode must be"),
    "hash limit not a number": (lambda d: {**d, "spec": {**d["spec"], "hash_limit": "1G"}}, "spec.hash_limit"),
    "a glob not a string": (lambda d: {**d, "spec": {**d["spec"], "include": [1]}}, "spec.include"),
    "no root": (lambda d: {**d, "spec": {}}, "spec.root"),
}


@pytest.mark.parametrize("case", BROKEN_BASELINES)
def test_a_broken_baseline_file_is_a_clear_error(dbmon_files, tree, tmp_path, case):
    content, message = BROKEN_BASELINES[case]
    base = tmp_path / "base.json"
    if callable(content):
        good = json.loads(baseline_of(dbmon_files, tree, base).read_text())
        content = json.dumps(content(good))
    base.write_text(content)
    assert_trouble(dbmon_files("check", tree, "--baseline", base), str(base), message)


def test_a_missing_or_undecodable_baseline_file_is_a_clear_error(dbmon_files, tree, tmp_path):
    assert_trouble(dbmon_files("check", tree, "--baseline", tmp_path / "none.json"), "none.json",
                   "No such file or directory")
    (tmp_path / "bytes.json").write_bytes(b"\xff\xfe\x00garbage")
    assert_trouble(dbmon_files("check", tree, "--baseline", tmp_path / "bytes.json"), "not a baseline file")


def test_a_missing_path_is_a_clear_error(dbmon_files, tree, tmp_path):
    assert_trouble(dbmon_files("baseline", tmp_path / "nowhere", "--out", tmp_path / "b.json"), "nowhere",
                   "No such file or directory")
    assert not (tmp_path / "b.json").exists()
    base = baseline_of(dbmon_files, tree, tmp_path / "base.json")
    shutil.rmtree(tree)
    assert_trouble(dbmon_files("check", tree, "--baseline", base), str(tree), "No such file or directory")
    assert_trouble(dbmon_files("baseline", tmp_path, "--out", tmp_path / "no" / "dir" / "b.json"), "b.json")


@pytest.fixture()
def open_dir():
    """A directory others may enter (pytest's own temporary directories are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="dbmon-files-cli-"))
    path.chmod(0o755)
    yield path
    for directory, subdirs, _ in os.walk(path):
        for name in subdirs:
            os.chmod(os.path.join(directory, name), 0o755)
    shutil.rmtree(path)


@contextmanager
def unprivileged():
    """Root reads whatever it likes, so permission tests run the block as nobody; the saved uid
    brings root back. Anyone else is refused by the permissions as they are."""
    if os.geteuid() != 0:
        yield
        return
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def _readable_tree(root: Path) -> Path:
    for sub in ("locked", "open"):
        (root / sub).mkdir(parents=True)
        (root / sub / "f.conf").write_text("x = 1\n")
        (root / sub / "f.conf").chmod(0o644)
        (root / sub).chmod(0o755)
    root.chmod(0o755)
    return root


def test_an_unreadable_path_is_a_clear_error(dbmon_files, open_dir):
    root = _readable_tree(open_dir / "t")
    base = baseline_of(dbmon_files, root, open_dir / "base.json")
    base.chmod(0o644)
    root.chmod(0o000)
    with unprivileged():
        made = dbmon_files("baseline", root, "--out", open_dir / "again.json")
        checked = dbmon_files("check", root, "--baseline", base)
    for result in (made, checked):
        assert_trouble(result, str(root))
        assert "not readable" in result.stderr or "Permission denied" in result.stderr
    assert not (open_dir / "again.json").exists()


def test_an_unreadable_directory_below_is_a_warning_and_never_a_deletion(dbmon_files, open_dir):
    root = _readable_tree(open_dir / "t")
    base = baseline_of(dbmon_files, root, open_dir / "base.json")
    base.chmod(0o644)
    (root / "locked").chmod(0o000)
    (root / "open" / "f.conf").write_text("x = 2\n")
    with unprivileged():
        result = dbmon_files("check", root, "--baseline", base, "--format", "json")
    assert result.exit_code == 1
    # Its mode is a real change; what is in it is unknown, not gone.
    assert listed(result, root) == {("permissions_changed", "locked", None), ("modified", "open/f.conf", None)}
    assert f"warning: {root / 'locked'}" in result.stderr and "not compared" in result.stderr


def test_names_that_are_not_utf8_are_escaped_and_the_output_stays_json(dbmon_files, tmp_path):
    root = tmp_path / "t"
    (root / os.fsdecode(b"dir\xff")).mkdir(parents=True)
    (root / os.fsdecode(b"caf\xe9.conf")).write_text("a = 1\n")
    base = baseline_of(dbmon_files, root, tmp_path / "base.json")
    assert dbmon_files("check", root, "--baseline", base).exit_code == 0
    (root / os.fsdecode(b"caf\xe9.conf")).write_text("a = 2\n")
    (root / os.fsdecode(b"dir\xff") / os.fsdecode(b"new\x80")).write_text("")
    result = dbmon_files("check", root, "--baseline", base, "--format", "json")
    result.stdout.encode("utf-8")  # no lone surrogates: any consumer can decode it
    assert result.exit_code == 1
    assert listed(result, root) == {("modified", "caf\\xe9.conf", None), ("created", "dir\\xff/new\\x80", None)}


def test_a_newline_in_a_name_cannot_forge_a_line_of_text(dbmon_files, tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    base = baseline_of(dbmon_files, root, tmp_path / "base.json")
    (root / "x\ncreated              forged").write_text("")
    result = dbmon_files("check", root, "--baseline", base)
    assert result.exit_code == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith("created") and "x\\x0acreated" in line


def test_a_symlink_loop_is_recorded_and_never_followed(dbmon_files, tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    (root / "self").symlink_to(".")
    (root / "up").symlink_to("..")
    base = baseline_of(dbmon_files, root, tmp_path / "base.json")
    entries = json.loads(base.read_text())["entries"]
    assert {os.path.relpath(p, root): (e["type"], e.get("link")) for p, e in entries.items()} == {
        ".": ("dir", None), "a": ("symlink", "b"), "b": ("symlink", "a"), "self": ("symlink", "."),
        "up": ("symlink", "..")}
    assert dbmon_files("check", root, "--baseline", base).exit_code == 0
    (root / "self").unlink()
    (root / "self").symlink_to("self")
    result = dbmon_files("check", root, "--baseline", base, "--format", "json")
    assert [(c["type"], c["fields"]) for c in json.loads(result.stdout)] == [("modified", ["link"])]


# diff-config


def _pair(tmp_path, name: str, old: str, new: str, new_name: str | None = None) -> tuple[Path, Path]:
    (tmp_path / "old").mkdir(exist_ok=True)
    (tmp_path / "new").mkdir(exist_ok=True)
    old_path, new_path = tmp_path / "old" / name, tmp_path / "new" / (new_name or name)
    old_path.write_text(old)
    new_path.write_text(new)
    return old_path, new_path


def test_a_postgresql_setting_change_is_an_object_with_its_risk_and_restart(dbmon_files, tmp_path):
    old, new = _pair(tmp_path, "postgresql.conf", "shared_buffers = 128MB\n", "shared_buffers = '256MB'\n")
    result = dbmon_files("diff-config", old, new)
    assert result.exit_code == 1
    (change,) = json.loads(result.stdout)
    assert {"parameter", "old", "new", "risk", "restart_required"} <= set(change)
    assert (change["parameter"], change["old"], change["new"], change["restart_required"]) == (
        "shared_buffers", "128MB", "256MB", True)
    assert change["risk"] == "high"  # a restart is an outage
    text = dbmon_files("diff-config", old, new, "--format", "text")
    assert text.exit_code == 1 and "shared_buffers" in text.stdout and "(restart)" in text.stdout


def test_kind_is_given_when_the_name_does_not_say(dbmon_files, tmp_path):
    old, new = _pair(tmp_path, "settings.txt", "shared_buffers = 128MB\n", "shared_buffers = '256MB'\n")
    assert_trouble(dbmon_files("diff-config", old, new), "settings.txt", "--kind")
    result = dbmon_files("diff-config", old, new, "--kind", "postgresql")
    assert result.exit_code == 1
    assert [(c["parameter"], c["restart_required"]) for c in json.loads(result.stdout)] == [("shared_buffers", True)]


def test_a_trust_rule_in_pg_hba_is_critical(dbmon_files, tmp_path):
    old, new = _pair(tmp_path, "pg_hba.conf", "local all all peer\nhost all all 10.0.0.0/8 scram-sha-256\n",
                     "local all all peer\nhost all all 10.0.0.0/8 trust\n")
    result = dbmon_files("diff-config", old, new)
    assert result.exit_code == 1
    (change,) = json.loads(result.stdout)
    assert (change["rule"], change["old"], change["new"], change["risk"]) == (
        "host all all 10.0.0.0/8", "scram-sha-256", "trust", "critical")


def test_the_same_meaning_is_no_change(dbmon_files, tmp_path):
    old, new = _pair(tmp_path, "postgresql.conf", "shared_buffers = 128MB\n",
                     "# tuned later\n\nshared_buffers   =  '131072kB'   # the same\n")
    result = dbmon_files("diff-config", old, new)
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    text = dbmon_files("diff-config", old, new, "--format", "text")
    assert (text.exit_code, text.stdout) == (0, "")


def test_a_missing_config_file_is_a_clear_error(dbmon_files, tmp_path):
    old, new = _pair(tmp_path, "postgresql.conf", "a = 1\n", "a = 2\n")
    assert_trouble(dbmon_files("diff-config", tmp_path / "gone" / "postgresql.conf", new), "gone",
                   "No such file or directory")
    assert_trouble(dbmon_files("diff-config", old, tmp_path / "postgresql.conf"), str(tmp_path / "postgresql.conf"))


def test_a_password_never_reaches_the_output(dbmon_files, tmp_path):
    old, new = _pair(tmp_path, "postgresql.conf", "primary_conninfo = 'host=db1 user=rep password=hunter2-old'\n",
                     "primary_conninfo = 'host=db1 user=rep password=s3cret-new'\n")
    for fmt in ("json", "text"):
        result = dbmon_files("diff-config", old, new, "--format", fmt)
        assert result.exit_code == 1 and "primary_conninfo" in result.stdout
        assert "hunter2" not in result.output and "s3cret" not in result.output


# Through a real process: the entry point, the exit status and the bytes on stdout.


def _dbmon(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor_app.cli.main", "files", *map(str, args)], cwd=REPO,
                          capture_output=True, timeout=60)


@pytest.mark.slow
def test_the_command_checks_a_tree_with_odd_names_end_to_end(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / os.fsdecode(b"r\xe9plica.conf")).write_text("a = 1\n")
    base = tmp_path / "base.json"
    made = _dbmon("baseline", root, "--out", base)
    assert made.returncode == 0 and b"2 entries recorded" in made.stderr
    assert _dbmon("check", root, "--baseline", base).returncode == 0
    (root / os.fsdecode(b"r\xe9plica.conf")).write_text("a = 2\n")
    checked = _dbmon("check", root, "--baseline", base, "--format", "json")
    assert checked.returncode == 1, checked.stderr
    (change,) = json.loads(checked.stdout.decode("utf-8"))
    assert (change["type"], change["path"]) == ("modified", str(root / "r\\xe9plica.conf"))


@pytest.mark.slow
def test_the_command_diffs_configs_and_fails_cleanly_end_to_end(tmp_path):
    old, new = _pair(tmp_path, "my.ini", "[mysqld]\nmax_connections = 100\n", "[mysqld]\nmax_connections = 500\n")
    unknown = _dbmon("diff-config", old, new)
    assert unknown.returncode == 2 and b"give --kind" in unknown.stderr and b"Traceback" not in unknown.stderr
    known = _dbmon("diff-config", old, new, "--kind", "mysql")
    assert known.returncode == 1
    assert [c["parameter"].rsplit(".", 1)[-1] for c in json.loads(known.stdout)] == ["max_connections"]
