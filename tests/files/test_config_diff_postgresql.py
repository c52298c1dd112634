"""postgresql.conf parsing and diffing on real files: units, includes, hostile content, risks."""

from __future__ import annotations

import json
import os
import time

import pytest

from monitor_app.files.config_diff import diff_config_files, diff_parsed, parse_config_file, parse_config_text
from monitor_app.files.config_diff.pg_values import builtin_settings, normalise

KEY = b"test-key"


def write(path, text: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def diff_texts(tmp_path, old: str, new: str, **kwargs):
    return diff_config_files(write(tmp_path / "old" / "postgresql.conf", old),
                             write(tmp_path / "new" / "postgresql.conf", new), **kwargs)


def by_name(changes):
    return {c["parameter"]: c for c in changes}


@pytest.mark.parametrize(("old", "new"), [
    ("work_mem = 128MB", "work_mem = 131072kB"),
    ("shared_buffers = 16384", "shared_buffers = 128MB"),
    ("shared_buffers = '1GB'", "shared_buffers = 131072"),
    ("statement_timeout = 5min", "statement_timeout = 300000"),
    ("statement_timeout = '1h'", "statement_timeout = 3600s"),
    ("vacuum_cost_delay = '0.5ms'", "vacuum_cost_delay = '500us'"),
    ("fsync = on", "fsync = TRUE"),
    ("fsync = yes", "fsync = 1"),
    ("fsync = t", "fsync = on"),
    ("synchronous_commit = on", "synchronous_commit = true"),
    ("wal_level = Replica", "wal_level = replica"),
    ("max_connections = 0x64", "max_connections = 100"),
    ("shared_preload_libraries = 'pg_stat_statements,auto_explain'",
     "shared_preload_libraries = 'pg_stat_statements, auto_explain'"),
])
def test_equivalent_spellings_are_not_changes(tmp_path, old, new):
    assert diff_texts(tmp_path, old + "\n", new + "\n") == []


def test_comments_whitespace_case_and_order_are_not_changes(tmp_path):
    old = "work_mem = 4MB\nmax_connections = 100 # default\nlog_min_duration_statement=250ms\n"
    new = ("# tuned\n\n  LOG_MIN_DURATION_STATEMENT   250ms\n"
           "max_connections=100\n\twork_mem '4MB'   # note\n")
    assert diff_texts(tmp_path, old, new) == []


def test_value_change_shows_normalised_values_and_new_location(tmp_path):
    [change] = diff_texts(tmp_path, "work_mem = 4096kB\n", "# x\nwork_mem = 8MB\n")
    assert change["parameter"] == "work_mem" and change["change"] == "changed"
    assert (change["old"], change["new"]) == ("4MB", "8MB")
    assert change["file"].endswith(os.path.join("new", "postgresql.conf")) and change["line"] == 2
    assert change["risk"] == "medium" and change["restart_required"] is False


def test_added_and_removed_parameters(tmp_path):
    changes = by_name(diff_texts(tmp_path, "log_connections = on\n", "log_disconnections = on\n"))
    assert changes["log_connections"]["change"] == "removed" and changes["log_connections"]["new"] is None
    assert changes["log_connections"]["file"].endswith(os.path.join("old", "postgresql.conf"))
    assert changes["log_disconnections"]["change"] == "added" and changes["log_disconnections"]["old"] is None
    assert changes["log_disconnections"]["risk"] == "low"


def test_quoting_escapes_and_last_definition_wins(tmp_path):
    path = write(tmp_path / "postgresql.conf",
                 "search_path = 'a'\n"
                 "application_name = 'it''s \\'x\\' \\101\\t'\n"
                 "Search_Path = '\"$user\", public'\n")
    parsed = parse_config_file(path, key=KEY)
    entries = {e["parameter"]: e for e in parsed["entries"]}
    assert entries["application_name"]["value"] == "it's 'x' A\t"
    assert entries["search_path"]["value"] == '"$user", public' and entries["search_path"]["line"] == 3
    assert parsed["errors"] == []


def test_bad_lines_become_errors_with_line_numbers(tmp_path):
    path = write(tmp_path / "postgresql.conf",
                 "work_mem = 4MB\n= 5\nwork_mem\nsearch_path = public.x\nshared_buffers = 1 2\n"
                 "data_directory = /var/lib\nvacuum_cost_delay = 0.5ms\nport = 5433\n")
    parsed = parse_config_file(path, key=KEY)
    # Unquoted paths and `0.5ms` are errors in PostgreSQL too: they do not lex as one value.
    assert [e["line"] for e in parsed["errors"]] == [2, 3, 4, 5, 6, 7]
    # Valid lines around the bad ones are still read.
    assert {e["parameter"] for e in parsed["entries"]} == {"work_mem", "port"}


def test_change_in_included_file_names_that_file(tmp_path):
    for side, value in (("old", "100"), ("new", "200")):
        write(tmp_path / side / "postgresql.conf", "include 'sub/extra.conf'\nwork_mem = 4MB\n")
        write(tmp_path / side / "sub" / "extra.conf", f"# extra\nmax_connections = {value}\n")
    [change] = diff_config_files(str(tmp_path / "old" / "postgresql.conf"), str(tmp_path / "new" / "postgresql.conf"))
    assert change["file"] == str(tmp_path / "new" / "sub" / "extra.conf") and change["line"] == 2
    assert change["restart_required"] is True and change["risk"] == "high"


def test_include_dir_reads_conf_files_in_byte_order_skipping_hidden(tmp_path):
    conf_d = tmp_path / "conf.d"
    write(conf_d / "B.conf", "work_mem = 1MB\n")
    write(conf_d / "a.conf", "work_mem = 2MB\n")  # 'a' sorts after 'B' in the C locale: wins
    write(conf_d / ".hidden.conf", "work_mem = 3MB\n")
    write(conf_d / "notes.txt", "work_mem = 4MB\n")
    (conf_d / "dir.conf").mkdir()
    parsed = parse_config_file(write(tmp_path / "postgresql.conf", "include_dir = 'conf.d'\n"), key=KEY)
    assert [e["value"] for e in parsed["entries"]] == ["2MB"]
    assert parsed["files"] == [str(tmp_path / "postgresql.conf"), str(conf_d / "B.conf"), str(conf_d / "a.conf")]


def test_missing_includes(tmp_path):
    path = write(tmp_path / "postgresql.conf",
                 "include_if_exists 'absent.conf'\ninclude 'gone.conf'\ninclude_dir 'nodir'\nport = 1\n")
    parsed = parse_config_file(path, key=KEY)
    assert [e["line"] for e in parsed["errors"]] == [2, 3]
    assert "gone.conf" in parsed["errors"][0]["message"]
    assert parsed["entries"][0]["parameter"] == "port"


def test_include_cycle_is_an_error_not_a_hang(tmp_path):
    write(tmp_path / "a.conf", "include 'b.conf'\nwork_mem = 1MB\n")
    write(tmp_path / "b.conf", "include 'postgresql.conf'\nport = 5433\n")
    path = write(tmp_path / "postgresql.conf", "include 'a.conf'\n")
    started = time.monotonic()
    parsed = parse_config_file(path, key=KEY)
    assert time.monotonic() - started < 1
    assert any("cycle" in e["message"] and e["file"] == str(tmp_path / "b.conf") for e in parsed["errors"])
    assert {e["parameter"] for e in parsed["entries"]} == {"work_mem", "port"}


def test_include_depth_is_limited(tmp_path):
    for level in range(13):
        write(tmp_path / f"l{level}.conf", f"include 'l{level + 1}.conf'\nport = {level}\n")
    write(tmp_path / "l13.conf", "port = 13\n")
    parsed = parse_config_file(str(tmp_path / "l0.conf"), "postgresql", key=KEY)
    assert len(parsed["files"]) == 11  # the top file and 10 levels of includes
    assert any("deeper than 10" in e["message"] for e in parsed["errors"])
    assert parsed["entries"][0]["value"] == "0"  # the top file's own line comes last


def test_text_without_base_dir_follows_no_includes(tmp_path):
    write(tmp_path / "inc.conf", "port = 7\n")
    plain = parse_config_text("include 'inc.conf'\n", "postgresql", key=KEY)
    assert plain["entries"] == [] and "base directory" in plain["errors"][0]["message"]
    based = parse_config_text("include 'inc.conf'\n", "postgresql", key=KEY, base_dir=str(tmp_path))
    assert based["entries"][0]["value"] == "7" and based["files"] == [str(tmp_path / "inc.conf")]


def test_non_utf8_bytes_do_not_crash(tmp_path):
    old = write(tmp_path / "old" / "postgresql.conf", b"# caf\xe9\nwork_mem = 4MB\napplication_name = 'x\xff'\n")
    new = write(tmp_path / "new" / "postgresql.conf", b"work_mem = 8MB\napplication_name = 'x\xfe'\n")
    parsed = parse_config_file(old, key=KEY)
    assert parsed["errors"][0]["line"] == 1 and "UTF-8" in parsed["errors"][0]["message"]
    json.dumps(parsed).encode("utf-8")
    changes = by_name(diff_config_files(old, new))
    assert set(changes) == {"work_mem", "application_name"}
    json.dumps(changes).encode("utf-8")


def test_unreadable_top_file_raises_but_special_includes_do_not_block(tmp_path):
    with pytest.raises(OSError):
        parse_config_file(str(tmp_path / "postgresql.conf"), key=KEY)
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    with pytest.raises(OSError):
        parse_config_file(str(fifo), "postgresql", key=KEY)
    parsed = parse_config_file(write(tmp_path / "postgresql.conf", "include 'fifo.conf'\ninclude '/dev/zero'\n"),
                               key=KEY)
    assert [e["line"] for e in parsed["errors"]] == [1, 2]


def test_ten_megabytes_of_garbage_is_bounded_and_fast(tmp_path):
    line = b"%$ garbage = = 'unterminated \\ \x01 more junk; !!\n"
    path = write(tmp_path / "postgresql.conf", line * (10_000_000 // len(line)))
    started = time.monotonic()
    parsed = parse_config_file(path, key=KEY)
    assert time.monotonic() - started < 1
    assert "read limit of 4194304 bytes" in parsed["errors"][0]["message"]
    # The first 100 errors, how many more there were, and where parsing gave up.
    assert len(parsed["errors"]) == 102
    assert "more errors not listed" in parsed["errors"][-2]["message"]
    assert "parsing stopped" in parsed["errors"][-1]["message"]


def test_many_valid_lines_up_to_the_limit_are_all_read(tmp_path):
    path = write(tmp_path / "postgresql.conf", "".join(f"my.p{i} = {i}\n" for i in range(20_000)) + "x y z\n" * 50)
    parsed = parse_config_file(path, key=KEY)
    assert len(parsed["entries"]) == 20_000 and len(parsed["errors"]) == 50


def test_byte_budget_is_shared_by_includes(tmp_path):
    write(tmp_path / "big.conf", "port = 1\n" * 2000)
    path = write(tmp_path / "postgresql.conf", "include 'big.conf'\ninclude 'big.conf'\nwork_mem = 1MB\n")
    parsed = parse_config_file(path, key=KEY, max_bytes=15_000)
    first, second = parsed["errors"]
    assert "only its first" in first["message"] and first["file"] == str(tmp_path / "big.conf")
    assert "read limit" in second["message"]
    assert {e["parameter"] for e in parsed["entries"]} == {"port", "work_mem"}


def test_restart_required_from_builtin_table_and_from_live_settings(tmp_path):
    changes = by_name(diff_texts(tmp_path, "shared_buffers = 128MB\nwork_mem = 4MB\nmy_ext.knob = 1\n",
                                 "shared_buffers = 256MB\nwork_mem = 8MB\nmy_ext.knob = 2\n"))
    assert changes["shared_buffers"]["restart_required"] is True and changes["shared_buffers"]["risk"] == "high"
    assert changes["work_mem"]["restart_required"] is False
    assert changes["my_ext.knob"]["restart_required"] is None
    live = {"WORK_MEM": {"context": "postmaster", "unit": "kB", "vartype": "integer", "pending_restart": True},
            "my_ext.knob": {"context": "sighup", "unit": None, "vartype": "integer", "pending_restart": False}}
    changes = by_name(diff_texts(tmp_path, "work_mem = 4MB\nmy_ext.knob = 1\n", "work_mem = 8MB\nmy_ext.knob = 2\n",
                                 pg_settings=live))
    assert changes["work_mem"]["restart_required"] is True and changes["work_mem"]["risk"] == "high"
    assert changes["my_ext.knob"]["restart_required"] is False


def test_live_units_decide_what_a_bare_number_means(tmp_path):
    # With a unit of MB, a bare 128 is 128MB; the shipped table (kB) would read it as 128kB.
    live = {"work_mem": {"context": "user", "unit": "MB", "vartype": "integer"}}
    assert diff_texts(tmp_path, "work_mem = 128\n", "work_mem = 128MB\n", pg_settings=live) == []
    assert len(diff_texts(tmp_path, "work_mem = 128\n", "work_mem = 128MB\n")) == 1


@pytest.mark.parametrize(("old", "new", "risk"), [
    ("fsync = on", "fsync = off", "critical"),
    ("", "full_page_writes = off", "critical"),
    ("ssl = on", "", "critical"),
    ("listen_addresses = 'localhost'", "listen_addresses = 'localhost,*'", "critical"),
    ("", "listen_addresses = '0.0.0.0'", "critical"),
    ("password_encryption = 'scram-sha-256'", "password_encryption = md5", "critical"),
    ("wal_level = replica", "wal_level = minimal", "critical"),
    ("archive_mode = on", "archive_mode = off", "critical"),
    ("archive_command = 'cp %p /a/%f'", "archive_command = ''", "critical"),
    ("synchronous_commit = on", "synchronous_commit = off", "high"),
    ("max_connections = 100", "max_connections = 200", "high"),
    ("", "hba_file = '/etc/other_hba.conf'", "high"),
    ("port = 5432", "port = 5433", "high"),  # needs a restart
    ("fsync = off", "fsync = on", "medium"),  # back to safe: only tuning
    ("checkpoint_timeout = 5min", "checkpoint_timeout = 15min", "medium"),
    ("autovacuum_naptime = 1min", "autovacuum_naptime = 30s", "medium"),
    ("log_min_duration_statement = -1", "log_min_duration_statement = 250ms", "low"),
])
def test_risk_rubric(tmp_path, old, new, risk):
    [change] = diff_texts(tmp_path, old + "\n", new + "\n")
    assert change["risk"] == risk, change
    assert change["reason"]


def test_diff_parsed_takes_parsed_forms_of_the_same_kind(tmp_path):
    old = parse_config_text("work_mem = 1MB\n", "postgresql", key=KEY)
    new = parse_config_text("work_mem = 2MB\n", "postgresql", key=KEY)
    assert [c["parameter"] for c in diff_parsed(old, new)] == ["work_mem"]
    with pytest.raises(ValueError):
        diff_parsed(old, parse_config_text("port 1\n", "redis", key=KEY))


UNIT_CASES = [("work_mem", v) for v in ("128MB", "131072kB", "1.5MB", "4096", "0x100", "1e3", "  64 MB", "1TB")] + \
    [("effective_cache_size", v) for v in ("16384", "128MB", "1.5GB", "8kB", "12kB", "0.1MB")] + \
    [("statement_timeout", v) for v in ("5min", "300s", "1.5s", "0.5ms", "1500us", "1d", "2.5min")] + \
    [("vacuum_cost_delay", v) for v in ("2", "0.5ms", "500us", "0.001s")] + \
    [("enable_seqscan", v) for v in ("t", "of", "YES", "0")]


def test_unit_normalisation_matches_the_real_server():
    from tests.services import pg_admin_connect

    table = builtin_settings()
    conn = pg_admin_connect()
    try:
        with conn.cursor() as cur:
            for name, value in UNIT_CASES:
                cur.execute("SELECT set_config(%s, %s, false)", (name, value))
                cur.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,))
                server = cur.fetchone()[0]
                mine = normalise(value, table[name], name)
                vartype = table[name]["vartype"]
                if vartype == "bool":
                    expected = f"bool:{server == 'on'}"
                else:
                    expected = f"int:{server}" if vartype == "integer" else f"real:{float(server)!r}"
                assert mine.compare == expected, (name, value, server, mine)
    finally:
        conn.close()
