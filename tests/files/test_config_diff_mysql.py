"""my.cnf parsing and diffing on real files: groups, name folding, sizes, includes, risks."""

from __future__ import annotations

import pytest

from monitor_app.files.config_diff import diff_config_files, parse_config_file

KEY = b"test-key"


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def diff_texts(tmp_path, old: str, new: str):
    return diff_config_files(write(tmp_path / "old" / "my.cnf", old), write(tmp_path / "new" / "my.cnf", new))


def test_parse_groups_folded_names_quotes_and_bare_options(tmp_path):
    path = write(tmp_path / "my.cnf", """\
# comment
; also a comment
[mysqld]
Innodb-Buffer-Pool-Size = 128M   # trailing comment
loose-max_connections=200
datadir = "/var/lib/my sql" # quoted keeps spaces
init_connect = 'SET NAMES utf8mb4 # not a comment'
skip-name-resolve
[client]
port=3306
""")
    parsed = parse_config_file(path, key=KEY)
    entries = {e["parameter"]: e["value"] for e in parsed["entries"]}
    assert entries == {
        "mysqld.innodb_buffer_pool_size": "128M", "mysqld.max_connections": "200",
        "mysqld.datadir": "/var/lib/my sql", "mysqld.init_connect": "SET NAMES utf8mb4 # not a comment",
        "mysqld.skip_name_resolve": None, "client.port": "3306",
    }
    assert parsed["errors"] == []


def test_equivalent_spellings_and_order_are_not_changes(tmp_path):
    old = "[mysqld]\ninnodb_buffer_pool_size = 128M\nmax-connections = 100\nskip-name-resolve\nlocal_infile=0\n"
    new = ("[client]\n[MYSQLD]\n# reordered\nlocal-infile = OFF\nskip_name_resolve = ON\n"
           "loose-max_connections=100\ninnodb-buffer-pool-size=134217728\n")
    assert diff_texts(tmp_path, old, new) == []


def test_size_change_shows_normalised_sizes(tmp_path):
    [change] = diff_texts(tmp_path, "[mysqld]\nmax_allowed_packet=64m\n", "[mysqld]\nmax_allowed_packet=1G\n")
    assert (change["parameter"], change["old"], change["new"]) == ("mysqld.max_allowed_packet", "64M", "1G")
    assert change["restart_required"] is None


def test_same_option_in_two_groups_is_two_parameters(tmp_path):
    changes = diff_texts(tmp_path, "[client]\nport=3306\n[mysqld]\nport=3306\n", "[client]\nport=3307\n[mysqld]\nport=3306\n")
    assert [c["parameter"] for c in changes] == ["client.port"]


def test_includedir_reads_only_cnf_files_and_reports_their_name(tmp_path):
    for side, value in (("old", "100"), ("new", "150")):
        write(tmp_path / side / "my.cnf", "[mysqld]\nport=3306\n!includedir conf.d\nserver_id = 1\n")
        write(tmp_path / side / "conf.d" / "tuning.cnf", f"[mysqld]\nmax_connections = {value}\n")
        write(tmp_path / side / "conf.d" / "ignored.txt", f"[mysqld]\nmax_connections = {value}0\n")
    parsed = parse_config_file(str(tmp_path / "new" / "my.cnf"), key=KEY)
    assert parsed["files"] == [str(tmp_path / "new" / "my.cnf"), str(tmp_path / "new" / "conf.d" / "tuning.cnf")]
    # The including file's group resumes after the include.
    assert "mysqld.server_id" in {e["parameter"] for e in parsed["entries"]}
    [change] = diff_config_files(str(tmp_path / "old" / "my.cnf"), str(tmp_path / "new" / "my.cnf"))
    assert change["parameter"] == "mysqld.max_connections"
    assert change["file"] == str(tmp_path / "new" / "conf.d" / "tuning.cnf") and change["line"] == 2


def test_include_file_and_errors(tmp_path):
    write(tmp_path / "extra.cnf", "max_connections = 5\n[mysqld]\nport = 1\n")
    path = write(tmp_path / "my.cnf", "orphan = 1\n[mysqld\n!include extra.cnf\n!include missing.cnf\n!bogus x\n")
    parsed = parse_config_file(path, key=KEY)
    errors = [(e["file"].rsplit("/", 1)[1], e["line"]) for e in parsed["errors"]]
    assert errors == [("my.cnf", 1), ("my.cnf", 2), ("extra.cnf", 1), ("my.cnf", 4), ("my.cnf", 5)]
    assert [e["parameter"] for e in parsed["entries"]] == ["mysqld.port"]


@pytest.mark.parametrize(("old", "new", "risk"), [
    ("bind-address = 127.0.0.1", "bind-address = 0.0.0.0", "high"),
    ("bind-address = 127.0.0.1", "", "high"),  # MySQL then binds to every interface
    ("", "skip-grant-tables", "critical"),
    ("", "skip_networking = 1", "high"),
    ("skip-networking", "", "high"),
    ("require_secure_transport = ON", "require_secure_transport = OFF", "high"),
    ("innodb_flush_log_at_trx_commit = 1", "innodb_flush_log_at_trx_commit = 2", "high"),
    ("sync_binlog = 1", "sync_binlog = 0", "high"),
    ("innodb_buffer_pool_size = 1G", "innodb_buffer_pool_size = 2G", "medium"),
    ("general_log = 0", "general_log = 1", "low"),
])
def test_risk_rubric(tmp_path, old, new, risk):
    [change] = diff_texts(tmp_path, f"[mysqld]\n{old}\n", f"[mysqld]\n{new}\n")
    assert change["risk"] == risk, change
