""".pgpass parsing and diffing on real files: escapes, first match wins, passwords never shown."""

from __future__ import annotations

import re

from monitor_app.files.config_diff import diff_config_files, parse_config_file
from monitor_app.files.config_diff.pgpass import split_fields

KEY = b"test-key"
TOKEN = re.compile(r"<redacted:[0-9a-f]{8}>")


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_split_fields_handles_escapes():
    assert split_fields(r"db\:host:5432:*:u\\x:pa\:ss\\w:rd") == [r"db\:host", "5432", "*", r"u\\x", r"pa:ss\w:rd"]
    assert split_fields("a:b:c:d") is None
    assert split_fields(r"a:b:c:d\:e") is None


def test_parameters_are_match_fields_and_first_line_wins(tmp_path):
    path = write(tmp_path / ".pgpass", "# comment\n\ndb1:5432:app:alice:first\ndb1:5432:app:alice:second\n"
                                       r"h\:x:*:*:bob:pw" + "\n")
    parsed = parse_config_file(path, key=KEY)
    assert [(e["parameter"], e["line"]) for e in parsed["entries"]] == [("db1:5432:app:alice", 3), (r"h\:x:*:*:bob", 5)]
    assert all(TOKEN.fullmatch(e["value"]) for e in parsed["entries"])
    again = parse_config_file(write(tmp_path / "other" / ".pgpass", "db1:5432:app:alice:first\n"), key=KEY)
    assert again["entries"][0]["value"] == parsed["entries"][0]["value"]


def test_password_change_is_a_change_between_tokens(tmp_path):
    old = write(tmp_path / "old" / ".pgpass", "db1:5432:app:alice:hunter2\ndb2:5432:app:bob:same\n")
    new = write(tmp_path / "new" / ".pgpass", "db2:5432:app:bob:same\ndb1:5432:app:alice:hunter3\n*:*:*:carol:x\n")
    changes = {c["parameter"]: c for c in diff_config_files(old, new)}
    assert set(changes) == {"db1:5432:app:alice", "*:*:*:carol"}
    changed = changes["db1:5432:app:alice"]
    assert changed["change"] == "changed" and changed["risk"] == "medium" and changed["line"] == 2
    assert TOKEN.fullmatch(changed["old"]) and TOKEN.fullmatch(changed["new"]) and changed["old"] != changed["new"]
    assert changes["*:*:*:carol"]["change"] == "added" and changes["*:*:*:carol"]["risk"] == "medium"
    assert changes["*:*:*:carol"]["restart_required"] is None


def test_malformed_lines_are_errors(tmp_path):
    parsed = parse_config_file(write(tmp_path / "pgpass", "ok:1:d:u:p\nhost:5432:db\n"), key=KEY)
    assert [e["line"] for e in parsed["errors"]] == [2]
    assert [e["parameter"] for e in parsed["entries"]] == ["ok:1:d:u"]
