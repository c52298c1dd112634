"""redis.conf parsing and diffing on real files: quoting, repeated directives, units, includes, risks."""

from __future__ import annotations

import pytest

from monitor_app.files.config_diff import diff_config_files, parse_config_file

KEY = b"test-key"


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def diff_texts(tmp_path, old: str, new: str):
    return diff_config_files(write(tmp_path / "old" / "redis.conf", old), write(tmp_path / "new" / "redis.conf", new))


def test_parse_quoting_and_repeated_directives(tmp_path):
    path = write(tmp_path / "redis.conf", """\
# comment
logfile "/var/log/redis server.log"
notify-keyspace-events 'K\\'x'
save 900 1
save 300 10
loadmodule /m/a.so
loadmodule /m/b.so arg
client-output-buffer-limit slave 256mb 64mb 60 pubsub 32mb 8mb 60
bad "unbalanced
dir "/data"x
""")
    parsed = parse_config_file(path, key=KEY)
    entries = {e["parameter"]: e["value"] for e in parsed["entries"]}
    assert entries == {
        "logfile": '"/var/log/redis server.log"', "notify-keyspace-events": "\"K'x\"",
        "save": ["900 1", "300 10"], "loadmodule": ["/m/a.so", "/m/b.so arg"],
        "client-output-buffer-limit replica": "256mb 64mb 60", "client-output-buffer-limit pubsub": "32mb 8mb 60",
    }
    assert [e["line"] for e in parsed["errors"]] == [9, 10]


def test_equivalent_spellings_and_order_are_not_changes(tmp_path):
    old = ("bind 127.0.0.1 ::1\nsave 900 1\nsave 300 10\nmaxmemory 1gb\nappendonly yes\n"
           "client-output-buffer-limit slave 256mb 64mb 60\n")
    new = ("# reordered\nAPPENDONLY YES\nmaxmemory 1073741824\nsave 300 10 900 1\nBind ::1 127.0.0.1\n"
           "client-output-buffer-limit replica 268435456 64MB 60\n")
    assert diff_texts(tmp_path, old, new) == []


def test_units_are_redis_units(tmp_path):
    [change] = diff_texts(tmp_path, "maxmemory 1g\n", "maxmemory 1gb\n")  # 10^9 is not 2^30
    assert (change["old"], change["new"]) == ("1g", "1gb")
    assert diff_texts(tmp_path, "maxmemory 1k\n", "maxmemory 1000\n") == []
    assert diff_texts(tmp_path, "maxmemory 2KB\n", "maxmemory 2048\n") == []


def test_repeated_save_is_compared_as_a_set(tmp_path):
    [change] = diff_texts(tmp_path, "save 900 1\nsave 300 10\n", "save 300 10\nsave 900 1\nsave 60 10000\n")
    assert (change["parameter"], change["change"], change["risk"]) == ("save", "changed", "medium")
    assert change["new"] == "300 10; 900 1; 60 10000" and change["line"] == 3
    [change] = diff_texts(tmp_path, "save 900 1\n", 'save 900 1\nsave ""\n')
    assert change["new"] == '""'  # snapshots turned off, not merely unset


def test_change_in_included_file_names_that_file(tmp_path):
    for side, policy in (("old", "allkeys-lru"), ("new", "noeviction")):
        write(tmp_path / side / "redis.conf", "include conf.d/*.conf\nport 6379\n")
        write(tmp_path / side / "conf.d" / "10-memory.conf", f"maxmemory-policy {policy}\n")
        write(tmp_path / side / "conf.d" / "20-other.conf", "timeout 0\n")
    parsed = parse_config_file(str(tmp_path / "new" / "redis.conf"), key=KEY)
    assert len(parsed["files"]) == 3 and parsed["errors"] == []
    [change] = diff_config_files(str(tmp_path / "old" / "redis.conf"), str(tmp_path / "new" / "redis.conf"))
    assert change["file"] == str(tmp_path / "new" / "conf.d" / "10-memory.conf")


def test_include_cycle_is_an_error(tmp_path):
    write(tmp_path / "other.conf", "include redis.conf\nport 1\n")
    parsed = parse_config_file(write(tmp_path / "redis.conf", "include other.conf\n"), key=KEY)
    assert "cycle" in parsed["errors"][0]["message"]


@pytest.mark.parametrize(("old", "new", "risk"), [
    ("protected-mode yes", "protected-mode no", "critical"),
    ("requirepass foobared", "", "critical"),
    ("", "user default on nopass ~* +@all", "critical"),
    ("bind 127.0.0.1", "bind 0.0.0.0", "high"),
    ("bind 127.0.0.1", "bind * -::*", "high"),
    ("bind 127.0.0.1", "", "high"),
    ('rename-command CONFIG ""', "", "medium"),
    ("", "rename-command FLUSHALL x9", "medium"),
    ("", "rename-command GET get2", "low"),
    ("requirepass a", "requirepass b", "medium"),
    ("timeout 0", "timeout 300", "low"),
])
def test_risk_rubric(tmp_path, old, new, risk):
    [change] = diff_texts(tmp_path, old + "\n", new + "\n")
    assert change["risk"] == risk, change
    assert change["restart_required"] is None
