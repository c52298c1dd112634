"""Credential labels are written by whoever starts a container. A label naming one of dbmon's
own variables must not turn dbmon into a courier for it: a fake server that asks for the
password in clear text receives nothing, whatever the labels say."""

from __future__ import annotations

import secrets

import psycopg2
import pytest
from sqlalchemy import select

from monitor_app.assets.connection_budget import ConnectionBudget
from monitor_app.assets.config_assets import password_for
from monitor_app.config.declarative import parse_config
from monitor_app.containers.discovery import reconcile
from monitor_app.access.credential_box import CredentialBox
from monitor_app.errors import ConfigError
from monitor_app.assets.pg_transport import libpq_params
from monitor_app.assets.reachability import can_probe, probe
from monitor_app.schema.check import postgres_dsn
from monitor_app.store.models import Asset
from tests.containers.certs import make_ca, make_cert
from tests.containers.password_trap import PasswordTrap

pytestmark = pytest.mark.docker


@pytest.fixture()
def master_key(monkeypatch):
    key = "master-" + secrets.token_hex(16)
    monkeypatch.setenv("DBMON_SECRET_KEY", key)
    monkeypatch.setenv("PG_LABEL_PW", "label-pw-" + secrets.token_hex(8))
    return key


@pytest.fixture()
def ca(tmp_path):
    return make_ca(tmp_path)


@pytest.fixture()
def trap(request, tmp_path, ca):
    """A plain trap, or (param "tls") one whose certificate the opted-in config trusts."""
    cert = make_cert(tmp_path, cn="trap.test", ca=ca) if getattr(request, "param", None) == "tls" else (None, None)
    t = PasswordTrap(*cert)
    yield t
    t.stop()


def _containers(section: dict):
    return parse_config({"containers": section}).containers


def _discover_and_connect(sqlite_store, docker_engine, runner, trap, config, labels):
    """Start a container pointing dbmon at the trap, discover it, and do what the workers do next:
    the reachability login and the schema check's connection."""
    box = CredentialBox("test-secret-key")
    runner.run("dbmct/base:1", "trap", network="host",
               labels={"dbmon.engine": "postgres", "dbmon.port": str(trap.port), **labels})
    with sqlite_store.session() as s:
        out = reconcile(s, docker_engine, config, box)
    with sqlite_store.session() as s:
        asset = s.scalar(select(Asset).where(Asset.external_id == runner.name("trap")))
        assert asset is not None and asset.engine == "postgresql"
        assert asset.connection["port"] == trap.port
        password = password_for(asset, box)
        result = probe(asset, password, 3, ConnectionBudget(sqlite_store)) if can_probe(asset) else None
        if asset.connection.get("database"):
            with pytest.raises(psycopg2.OperationalError):
                psycopg2.connect(postgres_dsn(asset.connection, password), connect_timeout=3)
        return out, asset, password, result


def test_a_label_naming_dbmon_s_master_key_sends_nothing(sqlite_store, docker_engine, runner, trap, master_key):
    out, asset, password, _ = _discover_and_connect(
        sqlite_store, docker_engine, runner, trap, _containers({}),
        {"dbmon.password_env": "DBMON_SECRET_KEY", "dbmon.user": "postgres"})
    assert master_key not in trap.passwords
    assert trap.passwords == []
    assert password is None and asset.secret is None
    assert "user" not in asset.connection  # labels are ignored unless the config opts in
    assert "monitoring" not in asset.details


def test_an_opted_in_label_may_not_name_a_variable_outside_the_allowed_list(sqlite_store, docker_engine, runner,
                                                                           trap, master_key, ca):
    config = _containers({"label_credentials": {"enabled": True, "allowed_env": ["PG_LABEL_PW"],
                                                "sslrootcert": str(ca[0])}})
    out, asset, password, _ = _discover_and_connect(sqlite_store, docker_engine, runner, trap, config,
                                                    {"dbmon.password_env": "DBMON_SECRET_KEY"})
    assert trap.passwords == [] and password is None
    assert any("label dbmon.password_env" in e and "allowed_env" in e for e in out.errors), out.errors


@pytest.mark.parametrize("trap", ["plain", "tls"], indirect=True)
def test_an_allowed_label_password_goes_only_over_verified_tls_with_scram(sqlite_store, docker_engine, runner,
                                                                         trap, master_key, ca):
    """Plain: verify-full stops at the refused SSLRequest. TLS with a certificate dbmon trusts:
    the server gets as far as asking for a cleartext password, and require_auth refuses it."""
    config = _containers({"label_credentials": {"enabled": True, "allowed_env": ["PG_LABEL_PW"],
                                                "sslrootcert": str(ca[0])}})
    out, asset, password, result = _discover_and_connect(
        sqlite_store, docker_engine, runner, trap, config, {"dbmon.password_env": "PG_LABEL_PW"})
    assert out.errors == []
    assert password is not None  # handed over: only the connection's demands keep it in
    assert asset.connection["sslmode"] == "verify-full" and asset.connection["insecure"] is False
    assert libpq_params(asset.connection, password)["require_auth"] == "scram-sha-256"
    assert result is not None and not result.up
    assert trap.passwords == []
    if trap.tls is not None:
        assert trap.tls_handshakes >= 1 and trap.startups, "the trap should have reached authentication"
        assert "cleartext" in result.error or "password" in result.error, result.error


@pytest.mark.parametrize("section,field", [
    ({"label_credentials": {"allowed_env": ["DBMON_SECRET_KEY"]}}, "containers.label_credentials.allowed_env"),
    ({"label_credentials": {"allowed_env": ["dbmon_database_url"]}}, "containers.label_credentials.allowed_env"),
    ({"label_credentials": {"allowed_env": ["A B"]}}, "containers.label_credentials.allowed_env"),
    ({"label_credentials": {"sslmode": "prefer"}}, "containers.label_credentials.sslmode"),
])
def test_a_label_policy_that_would_hand_out_dbmon_s_settings_is_refused(section, field):
    with pytest.raises(ConfigError) as exc:
        _containers(section)
    assert exc.value.errors[0][0].startswith(field), exc.value.errors


def test_a_config_rule_demands_scram_too(sqlite_store, docker_engine, runner, trap, master_key):
    """A rule matching on labels can be claimed by any container that carries them: SCRAM is the default."""
    config = _containers({"credentials": [{"match": {"labels": {"team": "orders"}}, "password_env": "PG_LABEL_PW"}]})
    out, asset, password, result = _discover_and_connect(sqlite_store, docker_engine, runner, trap, config,
                                                         {"team": "orders"})
    assert password is not None and asset.connection["insecure"] is False
    assert libpq_params(asset.connection, password)["require_auth"] == "scram-sha-256"
    # The trap speaks no TLS, and TLS is what every non-insecure connection demands first.
    assert result is not None and not result.up and "SSL" in result.error, result
    assert trap.passwords == []
