"""Telling config kinds apart by name, and the entry points' handling of kinds and output shape."""

from __future__ import annotations

import json

import pytest

from monitor_app.files.config_diff import KINDS, diff_config_files, guess_kind, parse_config_file, parse_config_text

KEY = b"test-key"


@pytest.mark.parametrize(("path", "kind"), [
    ("/etc/postgresql/15/main/postgresql.conf", "postgresql"),
    ("/var/lib/pgsql/data/postgresql.auto.conf", "postgresql"),
    ("/etc/postgresql/15/main/conf.d/10-tuning.conf", "postgresql"),
    ("/srv/pgdata/conf.d/x.conf", "postgresql"),
    ("/etc/nginx/conf.d/site.conf", None),
    ("/etc/postgresql/15/main/pg_hba.conf", "pg_hba"),
    ("/etc/mysql/my.cnf", "mysql"),
    ("/etc/mysql/mariadb.cnf", "mysql"),
    ("/etc/mysql/conf.d/mysqld.cnf", "mysql"),
    ("/etc/redis/redis.conf", "redis"),
    ("/etc/redis/redis-6379.conf", "redis"),
    ("/home/app/.pgpass", "pgpass"),
    ("pgpass", "pgpass"),
    ("/etc/postgresql/15/main/pg_ident.conf", None),
    ("/etc/hosts", None),
])
def test_guess_kind(path, kind):
    assert guess_kind(path) == kind


def test_kinds_and_unknown_kind():
    assert KINDS == ("postgresql", "pg_hba", "mysql", "redis", "pgpass")
    with pytest.raises(ValueError):
        parse_config_text("x", "nginx", key=KEY)


def test_file_kind_comes_from_its_name_unless_given(tmp_path):
    path = tmp_path / "settings.txt"
    path.write_text("port 6380\n")
    with pytest.raises(ValueError):
        parse_config_file(str(path), key=KEY)
    assert parse_config_file(str(path), "redis", key=KEY)["kind"] == "redis"


@pytest.mark.parametrize(("kind", "text"), [
    ("postgresql", "port = 5432\n"), ("pg_hba", "local all all peer\n"), ("mysql", "[mysqld]\nport=3306\n"),
    ("redis", "port 6379\n"), ("pgpass", "h:1:d:u:p\n"),
])
def test_parsed_form_shape(kind, text):
    parsed = parse_config_text(text, kind, key=KEY)
    assert set(parsed) == {"kind", "entries", "errors", "files"}
    assert parsed["kind"] == kind and len(parsed["entries"]) == 1 and parsed["errors"] == []
    assert json.loads(json.dumps(parsed)) == parsed


def test_changes_have_every_field_and_a_stable_order(tmp_path):
    old, new = tmp_path / "a" / "redis.conf", tmp_path / "b" / "redis.conf"
    old.parent.mkdir()
    new.parent.mkdir()
    old.write_text("timeout 0\nport 6379\ntcp-keepalive 300\n")
    new.write_text("tcp-keepalive 60\nport 6380\ndatabases 4\n")
    changes = diff_config_files(str(old), str(new))
    assert [(c["parameter"], c["change"]) for c in changes] == [
        ("databases", "added"), ("port", "changed"), ("tcp-keepalive", "changed"), ("timeout", "removed")]
    for change in changes:
        assert set(change) == {"parameter", "change", "old", "new", "risk", "restart_required", "reason", "file", "line"}
    assert diff_config_files(str(old), str(new)) == changes
