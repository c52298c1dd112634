"""Connections to monitored PostgreSQL: TLS and SCRAM by default, against real servers."""

from __future__ import annotations

import psycopg2
import pytest

from monitor_app.config.declarative import parse_config
from monitor_app.containers.asset_upsert import Credential, _connection
from monitor_app.errors import ConfigError
from monitor_app.assets.pg_transport import libpq_params, libpq_supports_require_auth
from monitor_app.assets.reachability import probe_postgres
from monitor_app.store.migrate import upgrade
from monitor_app.store.base import Store
from tests.security.pg_cluster import SUPERUSER_PASSWORD, TlsCluster
from tests.security.tls_material import TestCA


@pytest.fixture(scope="module")
def tls_cluster():
    c = TlsCluster(hba_lines=["hostssl all trusting 127.0.0.1/32 trust",
                              "hostssl all cleartext 127.0.0.1/32 password"])
    try:
        c.start()
        c.psql("CREATE ROLE trusting LOGIN; CREATE ROLE cleartext LOGIN PASSWORD 'clear-pw'; "
               "CREATE ROLE monitor LOGIN PASSWORD 'monitor-pw'")
        c.psql("CREATE DATABASE dbmon_store OWNER monitor")
        yield c
    finally:
        c.stop()


def asset(tls_cluster, user: str, **extra) -> dict:
    return {"host": "127.0.0.1", "port": tls_cluster.port, "database": "postgres", "user": user, **extra}


def test_the_bundled_libpq_can_require_scram():
    # The fallback (channel_binding=require) is documented; this records which one runs here.
    params = libpq_params({"host": "h", "database": "d"}, None)
    if libpq_supports_require_auth():
        assert params["require_auth"] == "scram-sha-256"
    else:
        assert params["channel_binding"] == "require"


def test_it_connects_with_tls_and_scram_by_default(tls_cluster, connection_budget):
    conn = psycopg2.connect(**libpq_params(asset(tls_cluster, "monitor"), "monitor-pw"), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True,)
    finally:
        conn.close()
    assert probe_postgres(asset(tls_cluster, "monitor"), "monitor-pw", 5, connection_budget).up


def test_it_refuses_a_server_that_lets_it_in_without_authentication(tls_cluster, connection_budget):
    result = probe_postgres(asset(tls_cluster, "trusting"), None, 5, connection_budget)
    assert not result.up and "auth" in result.error.lower()


def test_it_refuses_to_send_a_password_in_clear_text(tls_cluster, connection_budget):
    result = probe_postgres(asset(tls_cluster, "cleartext"), "clear-pw", 5, connection_budget)
    assert not result.up and "password" in result.error.lower()


def test_it_refuses_a_server_without_tls(connection_budget):
    # The shared test server speaks no TLS at all.
    result = probe_postgres({"host": "127.0.0.1", "port": 5432, "database": "postgres", "user": "postgres"}, None, 5, connection_budget)
    assert not result.up and "ssl" in result.error.lower()


def test_with_a_ca_it_verifies_the_server_certificate_and_name(tls_cluster, tmp_path, connection_budget):
    good = asset(tls_cluster, "monitor", sslrootcert=str(tls_cluster.ca.cert))
    assert libpq_params(good, None)["sslmode"] == "verify-full"
    assert probe_postgres(good, "monitor-pw", 5, connection_budget).up
    stranger = TestCA(tmp_path / "other")
    wrong_ca = probe_postgres(asset(tls_cluster, "monitor", sslrootcert=str(stranger.cert)), "monitor-pw", 5, connection_budget)
    assert not wrong_ca.up and "certificate" in wrong_ca.error.lower()
    wrong_name = probe_postgres({**good, "host": "127.0.0.2"}, "monitor-pw", 5, connection_budget)  # not in the certificate
    assert not wrong_name.up


def test_a_weak_sslmode_stored_earlier_or_named_by_a_label_is_raised_to_require():
    assert libpq_params({"host": "h", "database": "d", "sslmode": "prefer"}, None)["sslmode"] == "require"
    hostile = _connection({"endpoints": [{"host": "127.0.0.1", "port": 5432}]},
                          Credential(user="u", database="d", sslmode="disable", password=None, rule="labels"))
    assert libpq_params(hostile, None)["sslmode"] == "require"


def test_the_config_file_refuses_a_weak_sslmode_unless_the_asset_opts_out():
    base = {"name": "a", "engine": "postgresql", "host": "h", "database": "d"}
    with pytest.raises(ConfigError) as exc:
        parse_config({"assets": [{**base, "sslmode": "prefer"}]})
    assert exc.value.errors[0][0] == "assets[0]" and "sslmode 'prefer'" in exc.value.errors[0][1]
    with pytest.raises(ConfigError) as exc:
        parse_config({"containers": {"credentials": [{"match": {"name": "x"}, "sslmode": "disable"}]}})
    assert exc.value.errors[0][0] == "containers.credentials[0]"
    assert parse_config({"assets": [base]}).assets[0].connection()["sslmode"] == "require"
    verified = parse_config({"assets": [{**base, "sslrootcert": "/etc/ca.pem"}]}).assets[0].connection()
    assert verified["sslmode"] == "verify-full" and verified["sslrootcert"] == "/etc/ca.pem"
    dev = parse_config({"assets": [{**base, "sslmode": "disable", "insecure": True}]}).assets[0].connection()
    params = libpq_params(dev, None)
    assert params["sslmode"] == "disable" and "require_auth" not in params and "channel_binding" not in params


def test_dbmon_keeps_its_own_store_on_a_tls_postgresql(tls_cluster):
    url = (f"postgresql+psycopg2://monitor:monitor-pw@127.0.0.1:{tls_cluster.port}/dbmon_store"
           f"?sslmode=verify-full&sslrootcert={tls_cluster.ca.cert}")
    upgrade(url)
    store = Store(url)
    try:
        with store.sql_engine.connect() as conn:
            from sqlalchemy import text

            assert conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar() is True
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() >= 1
    finally:
        store.dispose()
    assert SUPERUSER_PASSWORD  # the superuser is never used over TCP here
