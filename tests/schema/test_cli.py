"""`dbmon schema ...` for people and CI: JSON snapshots, diffs with diff(1) exit codes."""

from __future__ import annotations

import json
import sqlite3

import psycopg2
from click.testing import CliRunner

from monitor_app.cli.main import cli


def run(*args: str):
    return CliRunner().invoke(cli, ["schema", *args], catch_exceptions=False)


def test_it_writes_a_snapshot_and_diffs_files_like_diff(tmp_path):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.commit()
    old = tmp_path / "old.json"
    result = run("snapshot", "--dsn", f"sqlite:///{db}", "--out", str(old))
    assert result.exit_code == 0
    assert json.loads(old.read_text())["engine"] == "sqlite"

    same = run("diff", str(old), f"sqlite:///{db}")
    assert (same.exit_code, same.output.strip()) == (0, "no differences")

    conn.execute("ALTER TABLE t ADD COLUMN name TEXT")
    conn.execute("CREATE TABLE u (x)")
    conn.commit()
    changed = run("diff", str(old), f"sqlite:///{db}", "--format", "json")
    assert changed.exit_code == 1
    records = json.loads(changed.output)
    assert [(r["action"], r["object_type"], r["object"], r["risk"]) for r in records] == [
        ("added", "column", "main.t.name", "low"), ("added", "table", "main.u", "low")]
    assert set(records[0]) == {"action", "object_type", "object", "risk", "renamed_from", "detail"}

    text = run("diff", str(old), f"sqlite:///{db}")
    assert text.exit_code == 1 and "+ [low] column main.t.name: new nullable column" in text.output
    assert run("diff", str(old), f"sqlite:///{db}", "--fail-on", "high").exit_code == 0


def test_it_diffs_postgresql_alike_through_files_and_dsns(pg):
    # pg.changes runs file/file, file/DSN and DSN/DSN through this CLI and requires one answer.
    changes = pg.changes("DROP TABLE t", setup=("CREATE TABLE t (id integer)",))
    assert [(c["action"], c["object"], c["risk"]) for c in changes] == [("removed", "public.t", "critical")]
    assert run("diff", pg.url, pg.url).exit_code == 0


def test_it_exits_2_with_a_clear_message_on_bad_input(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(cli, ["schema", "diff", str(bad), str(bad)])
    assert result.exit_code == 2 and "not JSON" in result.output
    missing = CliRunner().invoke(cli, ["schema", "diff", str(tmp_path / "none.json"), str(bad)])
    assert missing.exit_code == 2 and "no such snapshot file" in missing.output
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"format": 7}')
    result = CliRunner().invoke(cli, ["schema", "diff", str(wrong), str(wrong)])
    assert result.exit_code == 2 and "'format' must be 1" in result.output
    down = CliRunner().invoke(cli, ["schema", "snapshot", "--dsn", "postgresql://postgres@127.0.0.1:1/x"])
    assert down.exit_code == 2 and "cannot connect" in down.output
    odd = CliRunner().invoke(cli, ["schema", "snapshot", "--dsn", "mysql://x"])
    assert odd.exit_code == 2 and "unsupported DSN" in odd.output


def test_it_installs_and_uninstalls_the_trigger(pg_database, audited_store):
    url = pg_database[1]
    assert run("install-trigger", "--dsn", url).output.strip() == "schema event trigger installed"
    assert run("uninstall-trigger", "--dsn", url).output.strip() == "schema event trigger removed"
    assert run("uninstall-trigger", "--dsn", url).output.strip() == "no schema event trigger was installed"


def test_it_refuses_to_touch_the_trigger_when_it_cannot_audit(pg_database, tmp_path, monkeypatch):
    from monitor_app.schema import event_trigger
    from monitor_app.config.settings import get_settings

    monkeypatch.setenv("DBMON_DATABASE_URL", f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["schema", "install-trigger", "--dsn", pg_database[1]])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "dbmon db upgrade" in result.output and "Traceback" not in result.output
    conn = psycopg2.connect(pg_database[1])
    try:
        assert not event_trigger.installed(conn)
    finally:
        conn.close()
