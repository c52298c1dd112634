"""`dbmon schema snapshot|diff` with mysql:// and mariadb:// DSNs, never printing a password."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from monitor_app.cli.main import cli
from tests.schema.mysql_scratch import MysqlScratch, own_records


def run(*args: str):
    return CliRunner().invoke(cli, ["schema", *args])


@pytest.fixture(scope="module")
def scratch():
    db = MysqlScratch()
    yield db
    db.drop()


@pytest.fixture()
def db(scratch):
    scratch.reset()
    scratch.run("CREATE TABLE t (id int NOT NULL PRIMARY KEY, name varchar(40))")
    return scratch


@pytest.fixture()
def login(db):
    """An account with a password that may read the scratch database: (DSN, password)."""
    user, password = f"dbmon_c_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    db.run(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'", f"GRANT SELECT ON `{db.name}`.* TO '{user}'@'%'")
    host = db.dsn.split("@", 1)[1].rsplit("/", 1)[0]
    yield f"mysql://{user}:{password}@{host}/{db.name}", password
    db.run(f"DROP USER IF EXISTS '{user}'@'%'")


def test_it_snapshots_and_diffs_like_diff(db, tmp_path):
    out = tmp_path / "old.json"
    result = run("snapshot", "--dsn", db.dsn, "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["engine"] in ("mysql", "mariadb") and f"{db.name}.t" in {o["name"] for o in doc["objects"].values()}

    # Accounts with privileges on *.* are in every database's snapshot: one a test elsewhere on the
    # shared server adds meanwhile is no difference of this database's (hence own_records, and
    # --fail-on critical where an exit code is checked: adding or dropping an account is high).
    same = run("diff", str(out), db.dsn, "--format", "json")
    assert own_records(json.loads(same.output)) == []
    assert run("diff", db.dsn, db.dsn.replace("mysql://", "mariadb://", 1), "--fail-on", "critical").exit_code == 0

    db.run("ALTER TABLE t ADD COLUMN email varchar(100)", "ALTER TABLE t DROP COLUMN name")
    changed = run("diff", str(out), db.dsn, "--format", "json")
    assert changed.exit_code == 1
    assert [(r["action"], r["object"], r["risk"]) for r in own_records(json.loads(changed.output))] == [
        ("removed", f"{db.name}.t.name", "critical"), ("added", f"{db.name}.t.email", "low")]
    text = run("diff", str(out), db.dsn)
    assert f"- [critical] column {db.name}.t.name: column dropped with its data" in text.output
    assert run("diff", str(out), db.dsn, "--fail-on", "critical").exit_code == 1
    db.run("ALTER TABLE t ADD COLUMN name varchar(40) AFTER id")
    assert run("diff", str(out), db.dsn, "--fail-on", "critical").exit_code == 0  # only the new column: low


def test_it_never_prints_the_password(db, login):
    dsn, password = login
    ok = run("snapshot", "--dsn", dsn)
    assert ok.exit_code == 0 and password not in ok.output
    for bad in (dsn.replace(password, password + "x"),               # wrong password
                dsn.rsplit("/", 1)[0] + "/dbmon_no_such_db",        # a database it may not read
                dsn + "?ssl=sometimes"):                            # a malformed DSN
        result = run("snapshot", "--dsn", bad)
        assert result.exit_code == 2 and result.output.startswith("error: "), result.output
        assert password not in result.output and "Traceback" not in result.output
    refused = run("diff", dsn.replace(password, password + "x"), str(db.dsn))
    assert refused.exit_code == 2 and password not in refused.output


def test_it_names_an_unreachable_server_and_exits_2():
    result = run("snapshot", "--dsn", "mysql://app:secret@127.0.0.1:1/shop?connect_timeout=1")
    assert result.exit_code == 2 and "cannot connect to mysql://app@127.0.0.1:1/shop" in result.output
    assert "secret" not in result.output
