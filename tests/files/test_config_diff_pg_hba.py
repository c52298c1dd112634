"""pg_hba.conf parsing and diffing on real files: rule identity, order, includes, risks."""

from __future__ import annotations

import pytest

from monitor_app.files.config_diff import diff_config_files, parse_config_file
from monitor_app.files.config_diff.pg_hba_diff import kept_in_order

KEY = b"test-key"

BASE = """\
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all   postgres   peer
host    all   all   127.0.0.1/32   scram-sha-256
host    db1,db2   app   10.0.0.0   255.0.0.0   scram-sha-256
host    all   all   0.0.0.0/0   reject
"""


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def diff_texts(tmp_path, old: str, new: str):
    return diff_config_files(write(tmp_path / "old" / "pg_hba.conf", old),
                             write(tmp_path / "new" / "pg_hba.conf", new))


def by_rule(changes):
    return {(c["rule"], c["change"]): c for c in changes}


def test_equivalent_spellings_comments_and_spacing_are_not_changes(tmp_path):
    new = """\
local all postgres peer   # the admin
host all all 127.0.0.1 255.255.255.255 scram-sha-256

host "db2",db1 app 10.1.2.3/8 \\
     scram-sha-256
host all all 0.0.0.0/0 reject
"""
    assert diff_texts(tmp_path, BASE, new) == []


def test_parsed_rules_keep_order_quotes_and_normalised_addresses(tmp_path):
    path = write(tmp_path / "pg_hba.conf", BASE + 'hostssl "all" "bob,x" .Example.COM cert clientcert=verify-full\n'
                                                  "host all @admins ::1 ffff:ffff:ffff:ffff:: md5\n")
    parsed = parse_config_file(path, key=KEY)
    rules = [e["rule"] for e in parsed["entries"]]
    assert rules == ["local all postgres", "host all all 127.0.0.1/32", "host db1,db2 app 10.0.0.0/8",
                     "host all all 0.0.0.0/0", 'hostssl "all" "bob,x" .example.com', "host all @admins ::/64"]
    assert parsed["entries"][4]["options"] == {"clientcert": "verify-full"}
    assert parsed["errors"] == []


def test_quoted_keyword_is_a_different_rule(tmp_path):
    changes = by_rule(diff_texts(tmp_path, "local all all peer\n", 'local "all" all peer\n'))
    assert set(changes) == {("local all all", "removed"), ('local "all" all', "added")}


def test_added_trust_rule_is_critical(tmp_path):
    [change] = diff_texts(tmp_path, BASE, BASE.replace("local   all   postgres   peer",
                                                       "local   all   postgres   peer\nhost all all 10.9.0.0/16 trust"))
    assert (change["rule"], change["change"], change["new"]) == ("host all all 10.9.0.0/16", "added", "trust")
    assert change["risk"] == "critical" and change["restart_required"] is False
    assert change["file"].endswith("new/pg_hba.conf") and change["line"] == 3


@pytest.mark.parametrize(("rule", "risk"), [
    ("host all all 0.0.0.0/0 scram-sha-256", "critical"),
    ("host all all ::0/0 cert", "critical"),
    ("host all all all scram-sha-256", "critical"),
    ("host all all 0.0.0.0 0.0.0.0 reject", "low"),
    ("host all all 10.0.0.0/8 password", "high"),
    ("host all all 10.0.0.0/8 md5", "high"),
    ("hostssl all all 10.0.0.0/8 scram-sha-256", "low"),
])
def test_added_rule_risks(tmp_path, rule, risk):
    [change] = diff_texts(tmp_path, "local all all peer\n", f"local all all peer\n{rule}\n")
    assert change["change"] == "added" and change["risk"] == risk


def test_method_or_option_change_is_a_change_of_the_same_rule(tmp_path):
    changes = diff_texts(tmp_path, BASE, BASE.replace("127.0.0.1/32   scram-sha-256", "127.0.0.1/32   trust"))
    [change] = changes
    assert (change["rule"], change["change"]) == ("host all all 127.0.0.1/32", "changed")
    assert (change["old"], change["new"], change["risk"]) == ("scram-sha-256", "trust", "critical")


def test_removing_a_reject_rule_is_high(tmp_path):
    [change] = diff_texts(tmp_path, BASE, BASE.replace("host    all   all   0.0.0.0/0   reject\n", ""))
    assert (change["change"], change["risk"], change["old"]) == ("removed", "high", "reject")
    assert change["file"].endswith("old/pg_hba.conf") and change["line"] == 5


def test_reorder_reports_the_minimal_set_of_moved_rules(tmp_path):
    rules = [f"host all u{i} 10.0.{i}.0/24 scram-sha-256" for i in range(6)]
    old = "\n".join(rules) + "\n"
    # u5 jumps to the front: one move explains the new order, not five.
    new = "\n".join([rules[5], *rules[:5]]) + "\n"
    [change] = diff_texts(tmp_path, old, new)
    assert (change["rule"], change["change"], change["risk"]) == ("host all u5 10.0.5.0/24", "moved", "medium")
    assert (change["old"], change["new"]) == ("position 6", "position 1")
    assert change["restart_required"] is False


def test_moves_are_judged_among_surviving_rules_only(tmp_path):
    old = "local all a peer\nlocal all b peer\nlocal all c peer\nlocal all d peer\n"
    new = "local all b peer\nlocal all e peer\nlocal all d peer\nlocal all c peer\n"
    changes = by_rule(diff_texts(tmp_path, old, new))
    assert set(changes) == {("local all a", "removed"), ("local all e", "added"), ("local all d", "moved")}


@pytest.mark.parametrize(("sequence", "kept_size"), [
    ([], 0), ([0, 1, 2], 3), ([2, 1, 0], 1), ([1, 0, 3, 2, 5, 4], 3), ([5, 0, 1, 2, 3, 4], 5), ([3, 0, 4, 1, 2], 3),
])
def test_kept_in_order_is_a_longest_increasing_subsequence(sequence, kept_size):
    kept = sorted(kept_in_order(sequence))
    values = [sequence[i] for i in kept]
    assert len(kept) == kept_size and values == sorted(values)


def test_includes_and_file_tokens(tmp_path):
    for side, method in (("old", "scram-sha-256"), ("new", "md5")):
        write(tmp_path / side / "pg_hba.conf", "include hba.d/first.conf\ninclude_dir hba.d/more\n"
                                               "include_if_exists missing.conf\nhost all @staff 10.0.0.0/8 cert\n")
        write(tmp_path / side / "hba.d" / "first.conf", "local all all peer\n")
        write(tmp_path / side / "hba.d" / "more" / "10-app.conf", f"host app app 10.1.0.0/16 {method}\n")
    parsed = parse_config_file(str(tmp_path / "new" / "pg_hba.conf"), key=KEY)
    assert [e["rule"] for e in parsed["entries"]] == ["local all all", "host app app 10.1.0.0/16",
                                                       "host all @staff 10.0.0.0/8"]
    assert parsed["errors"] == []
    [change] = diff_config_files(str(tmp_path / "old" / "pg_hba.conf"), str(tmp_path / "new" / "pg_hba.conf"))
    assert change["file"] == str(tmp_path / "new" / "hba.d" / "more" / "10-app.conf") and change["risk"] == "high"


def test_malformed_lines_are_errors(tmp_path):
    path = write(tmp_path / "pg_hba.conf", "\n".join([
        "local all all peer",
        "hots all all 10.0.0.0/8 md5",       # unknown type
        "host all all 10.0.0.0 md5",         # missing netmask
        "host all all 10.0.0.0/33 md5",      # bad CIDR
        "host all all 10.0.0.0 255.0.255.0 md5",  # non-contiguous mask
        "host all all 10.0.0.0/8",           # no method
        'host "all all 10.0.0.0/8 md5',      # unterminated quote
        "host all all 10.0.0.0/8 ldap noequals",
    ]) + "\n")
    parsed = parse_config_file(path, key=KEY)
    assert [e["line"] for e in parsed["errors"]] == [2, 3, 4, 5, 6, 7, 8]
    assert [e["rule"] for e in parsed["entries"]] == ["local all all"]


def test_duplicate_rules_are_tracked_separately(tmp_path):
    changes = diff_texts(tmp_path, "local all all peer\nlocal all all trust\n", "local all all peer\n")
    [change] = changes
    assert (change["rule"], change["change"], change["old"]) == ("local all all (#2)", "removed", "trust")


def test_rule_that_moved_and_changed_is_reported_for_both(tmp_path):
    old = "local all a peer\nlocal all b peer\nlocal all c peer\n"
    new = "local all c trust\nlocal all a peer\nlocal all b peer\n"
    changes = by_rule(diff_texts(tmp_path, old, new))
    assert set(changes) == {("local all c", "changed"), ("local all c", "moved")}
    assert changes[("local all c", "changed")]["risk"] == "critical"
    assert (changes[("local all c", "moved")]["old"], changes[("local all c", "moved")]["new"]) == \
        ("position 3", "position 1")
