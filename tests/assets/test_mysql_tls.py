"""TLS of the MySQL/MariaDB login probe, against a private MariaDB started with a certificate
issued by a test CA that expires in 5 days: the certificate and its expiry are recorded as the
container probe records them, and verification accepts the right CA and refuses another."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from monitor_app.assets.connection_budget import ConnectionBudget
from monitor_app.assets.reachability import apply_probe, probe_mysql
from monitor_app.containers.probes import read_certificate
from monitor_app.store.models import Asset, Event
from tests.assets.mariadb_server import PrivateMariaDB
from tests.containers.certs import make_ca, make_cert
from tests.schema.conftest import add_asset
from tests.services import free_port

pytestmark = pytest.mark.slow

PASSWORD = "tls-pw-" + secrets.token_hex(6)


@pytest.fixture(scope="module")
def tls_mariadb(tmp_path_factory):
    """(the server, its CA certificate); stopped through its own process whatever the outcome."""
    directory = tmp_path_factory.mktemp("mariadb-tls")
    ca = make_ca(directory)
    crt, key = make_cert(directory, cn="mariadb.test", days=5, ca=ca)
    server = PrivateMariaDB(directory, free_port(), crt, key).install()
    try:
        server.start()
        admin = server.admin()
        with admin.cursor() as cur:
            cur.execute("CREATE USER 'monitor'@'%%' IDENTIFIED BY %s", (PASSWORD,))
        admin.close()
        yield server, str(ca[0])
    finally:
        server.stop()


@pytest.fixture()
def budget(sqlite_store):
    made = ConnectionBudget(sqlite_store)
    yield made
    made.close()


def _target(server, **extra) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "user": "monitor", **extra}


def test_the_login_records_tls_and_the_certificate_with_its_expiry(tls_mariadb, sqlite_store, budget):
    server, _ = tls_mariadb
    result = probe_mysql(_target(server), PASSWORD, 5, budget)  # the default: required, unverified
    assert result.up and result.server_version.split("-")[0].count(".") == 2
    assert result.tls["used"] and not result.tls["verified"] and result.tls["version"].startswith("TLSv1.")
    assert result.certificate.subject == "CN=mariadb.test" and 4 < result.certificate.days_left <= 5
    # The container port probe reads the same certificate through MySQL's greeting.
    assert read_certificate("127.0.0.1", server.port, "mariadb", 5).certificate.fingerprint_sha256 == (
        result.certificate.fingerprint_sha256)

    asset_id = add_asset(sqlite_store, name="shop", engine="mariadb", connection=_target(server))
    for _ in range(2):  # once per certificate and threshold, however often it is seen
        with sqlite_store.session() as s:
            apply_probe(s, s.get(Asset, asset_id), probe_mysql(_target(server), PASSWORD, 5, budget), 60,
                        tls_warn_days=[30, 7, 1])
    with sqlite_store.session() as s:
        details = s.get(Asset, asset_id).details
        events = s.scalars(select(Event).where(Event.asset_id == asset_id, Event.type.like("tls.%"))).all()
        stored = details["tls"][f"127.0.0.1:{server.port}"]
        assert stored["fingerprint_sha256"] == result.certificate.fingerprint_sha256
        assert stored["not_after"] == result.certificate.not_after and details["probe"]["tls"]["used"] is True
        assert [(e.type, e.severity, e.payload["threshold_days"]) for e in events] == [("tls.expiring", "warning", 7)]


def test_verify_ca_accepts_the_issuing_ca_and_refuses_another(tls_mariadb, tmp_path, budget):
    server, ca = tls_mariadb
    verified = probe_mysql(_target(server, sslmode="verify_ca", sslrootcert=ca), PASSWORD, 5, budget)
    assert verified.up and verified.tls["verified"] is True
    stranger = make_ca(tmp_path, cn="another CA")[0]
    refused = probe_mysql(_target(server, sslmode="verify_ca", sslrootcert=str(stranger)), PASSWORD, 5, budget)
    assert not refused.up and "certificate verify failed" in refused.error


def test_verify_identity_checks_the_name_the_asset_connects_to(tls_mariadb, budget):
    server, ca = tls_mariadb
    assert probe_mysql(_target(server, sslrootcert=ca), PASSWORD, 5, budget).tls["sslmode"] == "verify_identity"
    # `localhost` reaches the same server, but the certificate names mariadb.test and 127.0.0.1 only.
    wrong_name = probe_mysql(_target(server, host="localhost", sslrootcert=ca), PASSWORD, 5, budget)
    assert not wrong_name.up and "certificate" in wrong_name.error.lower()
