"""MySQL and MariaDB as assets: the config entry, the login probe against the real MariaDB,
the refusal to hand the password to an unverified server, and discovered containers' labels."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from monitor_app.access.credential_box import CredentialBox
from monitor_app.assets import mysql_transport
from monitor_app.assets.config_assets import password_for, sync_config_assets
from monitor_app.assets.connection_budget import ConnectionBudget
from monitor_app.assets.login_target import loginable
from monitor_app.assets.reachability import can_probe, probe_mysql
from monitor_app.assets.reachability_check import due_assets, run_check
from monitor_app.config.declarative import parse_config
from monitor_app.containers.asset_upsert import upsert
from monitor_app.containers.identify import identify
from monitor_app.containers.inventory import ContainerRecord
from monitor_app.containers.label_credentials import resolve
from monitor_app.errors import ConfigError
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, Event
from tests.assets.mariadb_server import SHARED, shared_admin, throwaway_user
from tests.assets.mysql_password_trap import MySqlPasswordTrap
from tests.containers.certs import make_ca, make_cert
from tests.schema.conftest import make_runtime
from tests.services import free_port


@pytest.fixture()
def budget(sqlite_store):
    made = ConnectionBudget(sqlite_store)
    yield made
    made.close()


def _errors(asset: dict) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        parse_config({"assets": [{"name": "shop", **asset}]})
    return exc.value.errors


MARIADB = {"engine": "mariadb", "host": "db1", "user": "monitor"}


def test_config_errors_name_the_field():
    [(where, problem)] = _errors({**MARIADB, "sslmode": "verify-full"})  # PostgreSQL's name
    assert where == "assets[0].sslmode" and "verify_identity" in problem
    [(where, problem)] = _errors({**MARIADB, "sslmode": "bogus"})
    assert where == "assets[0].sslmode" and "'bogus'" in problem
    assert _errors({"engine": "mysql", "user": "monitor"}) == [("assets[0]", "host is required for a mysql asset")]
    assert _errors({"engine": "mariadb", "host": "db1"}) == [("assets[0]", "user is required for a mariadb asset")]
    [(where, problem)] = _errors({**MARIADB, "sslmode": "preferred"})
    assert where == "assets[0]" and "insecure: true" in problem
    [(where, _)] = _errors({"engine": "postgresql", "host": "h", "database": "d", "sslmode": "verify_ca"})
    assert where == "assets[0].sslmode"


def test_the_connection_defaults_to_port_3306_and_encryption_verified_when_a_ca_is_given():
    def connection(**extra):
        return parse_config({"assets": [{"name": "shop", **MARIADB, **extra}]}).assets[0].connection()

    assert connection() == {"host": "db1", "port": 3306, "database": None, "user": "monitor", "sslmode": "required",
                            "sslrootcert": None, "insecure": False}
    assert connection(sslrootcert="/etc/ca.pem")["sslmode"] == "verify_identity"
    assert connection(insecure=True)["sslmode"] == "preferred"
    given = connection(port=3307, database="shop", sslmode="verify_ca", sslrootcert="/etc/ca.pem")
    assert (given["port"], given["database"], given["sslmode"]) == (3307, "shop", "verify_ca")
    assert connection(sslmode="disable", insecure=True)["sslmode"] == "disable"


def test_a_weak_stored_mode_is_raised_unless_the_asset_is_insecure():
    assert mysql_transport.effective_sslmode({"sslmode": "disable"}) == "required"
    assert mysql_transport.effective_sslmode({"sslmode": "preferred", "sslrootcert": "/ca"}) == "verify_identity"
    assert mysql_transport.effective_sslmode({"sslmode": "verify-full"}) == "verify_identity"  # a rule's name
    assert mysql_transport.effective_sslmode({"sslmode": "disable", "insecure": True}) == "disable"
    assert mysql_transport.effective_sslmode({"insecure": True}) == "preferred"


@pytest.fixture()
def shared_user():
    admin = shared_admin()
    password = "pw-" + secrets.token_hex(8)
    try:
        with throwaway_user(admin, password) as user:
            yield user, password
    finally:
        admin.close()


def _declare(store, tmp_path, monkeypatch, user: str, password: str, **extra):
    """A runtime and the config asset `shop` on the shared MariaDB, registered; returns (rt, asset id)."""
    monkeypatch.setenv("SHOP_DB_PASSWORD", password)
    rt = make_runtime(store, tmp_path)
    config = parse_config({"assets": [{"name": "shop", "engine": "mariadb", **SHARED, "user": user,
                                       "password_env": "SHOP_DB_PASSWORD", **extra}]})
    with store.session() as s:
        assert sync_config_assets(s, config, rt.credentials).added == ["shop"]
    with store.session() as s:
        asset = s.scalar(select(Asset).where(Asset.name == "shop"))
        assert password_for(asset, rt.credentials) == password and password not in repr(asset.connection)
        return rt, asset.id


def _events(store, asset_id: int, type_: str) -> list[Event]:
    with store.session() as s:
        return list(s.scalars(select(Event).where(Event.asset_id == asset_id, Event.type == type_)))


def test_a_config_asset_is_registered_probed_and_up_with_its_version(sqlite_store, tmp_path, monkeypatch,
                                                                   shared_user):
    user, password = shared_user
    rt, asset_id = _declare(sqlite_store, tmp_path, monkeypatch, user, password, sslmode="preferred", insecure=True)
    with sqlite_store.session() as s:
        assert asset_id in due_assets(s, utcnow())
    assert run_check(rt, asset_id)["status"] == "up"
    admin = shared_admin()
    with admin.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    admin.close()
    with sqlite_store.session() as s:
        probe = s.get(Asset, asset_id).details["probe"]
    assert probe["server_version"] == version and probe["error"] is None
    assert probe["tls"]["used"] is False and probe["tls"]["sslmode"] == "preferred"  # the shared server has no TLS
    [up] = _events(sqlite_store, asset_id, "asset.up")
    assert up.payload["server_version"] == version


def test_by_default_a_server_without_tls_is_refused_before_logging_in(sqlite_store, tmp_path, monkeypatch,
                                                                     shared_user):
    user, password = shared_user
    rt, asset_id = _declare(sqlite_store, tmp_path, monkeypatch, user, password)
    result = run_check(rt, asset_id)
    assert result["status"] == "down" and "SSL is required" in result["error"]


def test_a_wrong_password_is_down_with_the_server_s_reason(sqlite_store, tmp_path, monkeypatch, shared_user):
    user, _ = shared_user
    rt, asset_id = _declare(sqlite_store, tmp_path, monkeypatch, user, "not-the-password", insecure=True)
    result = run_check(rt, asset_id)
    assert result["status"] == "down"
    assert result["error"].startswith(f"Access denied for user '{user}'@") and "(MySQL error 1045)" in result["error"]
    [down] = _events(sqlite_store, asset_id, "asset.down")
    assert "not-the-password" not in down.summary + repr(down.payload)


def test_a_refused_connection_is_down(budget):
    port = free_port()
    result = probe_mysql({"host": "127.0.0.1", "port": port, "user": "x", "insecure": True}, "pw", 2, budget)
    assert not result.up and "Connection refused" in result.error and "(MySQL error 2003)" in result.error


@pytest.fixture(scope="module")
def trap_tls(tmp_path_factory):
    directory = tmp_path_factory.mktemp("trap-tls")
    ca = make_ca(directory)
    return ca, make_cert(directory, cn="trap.test", ca=ca)


@pytest.mark.parametrize("demand", ["clear_password", "sha256_greeting", "caching_sha2_full"])
def test_the_password_goes_to_a_server_that_asks_for_it_only_once_its_certificate_is_verified(demand, trap_tls,
                                                                                             budget):
    ca, (crt, key) = trap_tls
    password = "secret-" + secrets.token_hex(8)
    trap = MySqlPasswordTrap(demand, crt, key)
    try:
        target = {"host": "127.0.0.1", "port": trap.port, "user": "monitor"}
        refused = probe_mysql({**target, "sslmode": "required"}, password, 3, budget)
        assert not refused.up and "clear text" in refused.error
        assert not trap.saw(password)
        # The same demand from a server that proved itself gets the password: the trap does catch it.
        probe_mysql({**target, "sslmode": "verify_ca", "sslrootcert": str(ca[0])}, password, 3, budget)
        assert trap.saw(password)
    finally:
        trap.stop()


def test_a_server_that_accepts_the_scramble_is_logged_into_over_unverified_tls(trap_tls, budget):
    _, (crt, key) = trap_tls
    password = "secret-" + secrets.token_hex(8)
    trap = MySqlPasswordTrap("caching_sha2_fast", crt, key)
    try:
        probe_mysql({"host": "127.0.0.1", "port": trap.port, "user": "monitor", "sslmode": "required"}, password, 3,
                    budget)
        assert trap.logged_in and not trap.saw(password)
    finally:
        trap.stop()


def mariadb_container(labels: dict | None = None) -> tuple[ContainerRecord, object]:
    record = ContainerRecord(id="d" * 64, name="shop-db", image="mariadb:11", env_names=["MARIADB_ROOT_PASSWORD"],
                             exposed_ports=[3306], status="running", labels=labels or {},
                             published_ports=[{"port": 3306, "proto": "tcp", "host_ip": "0.0.0.0", "host_port": 13306}])
    return record, identify(record)


def _containers(section: dict):
    return parse_config({"containers": section}).containers


def test_a_labelled_mariadb_container_becomes_a_loginable_asset(sqlite_store, monkeypatch):
    monkeypatch.setenv("SHOP_DB_PW", "label-pw")
    config = _containers({"label_credentials": {"enabled": True, "allowed_env": ["SHOP_DB_PW"],
                                                "sslrootcert": "/etc/dbmon/ca.pem"},
                          "credentials": [{"match": {"name": "shop-*"}, "password_env": "SHOP_DB_PW"}]})
    record, ident = mariadb_container({"dbmon.password_env": "SHOP_DB_PW", "dbmon.user": "monitor"})
    assert ident.engine == "mariadb"
    credential = resolve(record, ident, config.credentials, config.label_credentials)
    assert (credential.user, credential.database, credential.sslmode, credential.rule) == (
        "monitor", None, "verify_identity", "labels")
    box = CredentialBox("test-secret-key")
    with sqlite_store.session() as s:
        asset = upsert(s, record, ident, box=box, credential=credential).asset
        assert asset.connection == {"host": "127.0.0.1", "port": 13306, "user": "monitor", "database": None,
                                    "sslmode": "verify_identity", "sslrootcert": "/etc/dbmon/ca.pem", "insecure": False}
        assert password_for(asset, box) == "label-pw"
        assert can_probe(asset) and loginable(asset.engine, asset.connection, ("mysql", "mariadb"))
        assert asset.id in due_assets(s, utcnow())


def test_mariadb_labels_default_to_root_demand_a_verified_certificate_and_rules_stay_postgresql_only(monkeypatch):
    monkeypatch.setenv("SHOP_DB_PW", "pw")
    policy = {"enabled": True, "allowed_env": ["SHOP_DB_PW"]}
    config = _containers({"label_credentials": {**policy, "sslmode": "verify-ca"}})
    labels = {"dbmon.password_env": "SHOP_DB_PW"}
    credential = resolve(*mariadb_container(labels), [], config.label_credentials)
    assert (credential.user, credential.sslmode) == ("root", "verify_ca")
    assert resolve(*mariadb_container({**labels, "dbmon.sslmode": "verify_identity"}), [],
                   config.label_credentials).sslmode == "verify_identity"
    with pytest.raises(ConfigError) as exc:
        resolve(*mariadb_container({**labels, "dbmon.sslmode": "required"}), [], config.label_credentials)
    assert exc.value.errors[0][0] == "shop-db: label dbmon.sslmode"
    # A rule matching by name (written for PostgreSQL containers) hands a MariaDB one nothing.
    rules = _containers({"credentials": [{"match": {"name": "shop-*"}, "password_env": "SHOP_DB_PW"}]}).credentials
    assert resolve(*mariadb_container(), rules, None) is None


def test_a_discovered_mariadb_container_without_credentials_is_not_logged_into(sqlite_store):
    with sqlite_store.session() as s:
        asset = upsert(s, *mariadb_container(), box=CredentialBox("k")).asset
        assert asset.connection == {"host": "127.0.0.1", "port": 13306}
        assert not can_probe(asset) and asset.id not in due_assets(s, utcnow())
