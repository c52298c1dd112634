"""The MySQL/MariaDB rubric across servers: the same changes rated as each MySQL and MariaDB
version would carry them out, two databases compared, objects no server gives, and global
privileges (written into a snapshot's account, not granted on the shared test server: they would
reach every database, and so every parallel test's snapshot)."""

from __future__ import annotations

import copy

import pytest

from monitor_app.schema.diff import diff
from tests.schema.mysql_scratch import MysqlScratch, own_records
from tests.schema.test_mysql_rubric import BASE


@pytest.fixture(scope="module")
def scratch():
    db = MysqlScratch()
    yield db
    db.drop()


@pytest.fixture()
def db(scratch):
    scratch.reset()
    return scratch


def _as_server(snapshot: dict, engine: str, version: str) -> dict:
    snap = copy.deepcopy(snapshot)
    snap["engine"], snap["server_version"] = engine, version
    return snap


@pytest.mark.parametrize("engine, version, at_end, in_middle", [
    ("mysql", "8.0.11", "add-column-rebuild", "add-column-rebuild"),
    ("mysql", "8.0.12", "add-column-instant", "add-column-rebuild"),
    ("mysql", "8.0.29", "add-column-instant", "add-column-instant"),
    ("mariadb", "10.2.44-MariaDB", "add-column-rebuild", "add-column-rebuild"),
    ("mariadb", "10.3.2-MariaDB", "add-column-instant", "add-column-rebuild"),
    ("mariadb", "10.4.0-MariaDB", "add-column-instant", "add-column-instant"),
])
def test_instant_add_column_follows_the_server_version(db, engine, version, at_end, in_middle):
    db.run(*BASE)
    before = db.snapshot()
    db.run("ALTER TABLE full_t ADD COLUMN at_end int", "ALTER TABLE full_t ADD COLUMN in_middle int AFTER id")
    after = db.snapshot()
    changes = own_records(diff(_as_server(before, engine, version), _as_server(after, engine, version)))
    rules = {c["object"].rsplit(".", 1)[1]: c["detail"]["rule"] for c in changes}
    assert rules == {"at_end": at_end, "in_middle": in_middle}


@pytest.mark.parametrize("engine, version, algorithm", [
    ("mysql", "8.0.28", "INPLACE with a table rebuild"), ("mysql", "8.0.29", "INSTANT"),
    ("mariadb", "10.3.39-MariaDB", "INPLACE with a table rebuild"), ("mariadb", "10.4.0-MariaDB", "INSTANT")])
def test_drop_column_names_the_algorithm_of_the_server(db, engine, version, algorithm):
    db.run(*BASE)
    before = db.snapshot()
    db.run("ALTER TABLE full_t DROP COLUMN note")
    changes = own_records(diff(_as_server(before, engine, version), _as_server(db.snapshot(), engine, version)))
    assert changes[0]["risk"] == "critical" and f"({algorithm})" in changes[0]["detail"]["why"]


def test_utf8mb4_in_place_and_table_charsets_follow_the_flavour(db):
    db.run(*BASE)
    before = db.snapshot()
    db.run("ALTER TABLE full_t MODIFY c3 varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
           "ALTER TABLE full_t DEFAULT CHARACTER SET latin1")
    after = db.snapshot()
    on_mysql = own_records(diff(_as_server(before, "mysql", "8.0.36"), _as_server(after, "mysql", "8.0.36")))
    rules = {c["object"].rsplit(".", 1)[1]: c["detail"]["rule"] for c in on_mysql}
    assert rules == {"c3": "charset-converted", "full_t": "table-default-charset-rebuild"}
    old_mariadb = own_records(diff(_as_server(before, "mariadb", "10.3.39-MariaDB"),
                                   _as_server(after, "mariadb", "10.3.39")))
    assert {c["detail"]["rule"] for c in old_mariadb} == {"charset-converted", "table-default-charset-instant"}


def test_two_databases_compared_read_as_another_database_not_a_rename(db):
    db.run(*BASE)
    twin = MysqlScratch("dbmon_twin")
    try:
        twin.run(*BASE[:1], *BASE[2:])
        changes = own_records(diff(db.snapshot(), twin.snapshot()))
    finally:
        twin.drop()
    assert [(c["object_type"], c["risk"], c["detail"]["rule"]) for c in changes] == [
        ("database", "low", "rename-database")]


def test_anything_the_rubric_does_not_know_falls_back(db):
    db.run(*BASE)
    snap = db.snapshot()
    before, after = copy.deepcopy(snap), copy.deepcopy(snap)
    before["objects"]["odd:x"] = {"type": "odd", "name": "x", "local": "x", "parent": None, "attrs": {"a": 1}}
    after["objects"]["odd:x"] = {"type": "odd", "name": "x", "local": "x", "parent": None, "attrs": {"a": 2}}
    after["objects"]["odd:y"] = {"type": "odd", "name": "y", "local": "y", "parent": None, "attrs": {}}
    rules = {(c["action"], c["object"]): c["detail"]["rule"] for c in diff(before, after)}
    assert rules == {("modified", "x"): "other-changed", ("added", "y"): "other-added"}
    rules = {(c["action"], c["object"]): c["detail"]["rule"] for c in diff(after, snap)}
    assert rules == {("removed", "x"): "other-dropped", ("removed", "y"): "other-dropped"}


def _with_account(snapshot: dict, global_privileges: list[str] | None, **attrs) -> dict:
    snap = copy.deepcopy(snapshot)
    name = "'app'@'%'"
    if global_privileges is not None:
        snap["objects"][f"user:{name}"] = {"type": "user", "name": name, "local": name, "parent": None,
                                           "attrs": {"global_privileges": global_privileges, "account_locked": False,
                                                     **attrs}}
    return snap


@pytest.mark.parametrize("before, after, rule, risk", [
    (None, ["PROCESS"], "add-account-global", "high"),
    (None, [], "add-account", "low"),
    (["PROCESS", "SELECT"], ["SELECT"], "account-global-revoked", "high"),
    (["SELECT"], ["GRANT OPTION", "SELECT"], "account-global-granted", "high"),
    (["SELECT"], None, "drop-account", "high"),
])
def test_global_privileges_of_an_account_are_rated(db, before, after, rule, risk):
    db.run(*BASE)
    snap = db.snapshot()
    changes = diff(_with_account(snap, before), _with_account(snap, after))
    assert [(c["object"], c["risk"], c["detail"]["rule"]) for c in changes] == [("'app'@'%'", risk, rule)]
