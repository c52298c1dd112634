"""A real MariaDB inside a real container, discovered and logged into with label credentials.

The image is a neutral busybox one: the host's `mariadbd` runs in it on the host network, with
the system directories mounted read-only and a data directory made here. Only its process and
listening socket say "MariaDB". The config opts into label credentials with a CA, so the login
demands a certificate issued by it; the certificate is read by both the login and the port probe
and recorded once."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor_app.access.credential_box import CredentialBox
from monitor_app.assets.config_assets import password_for
from monitor_app.assets.connection_budget import ConnectionBudget
from monitor_app.assets.reachability import apply_probe, can_probe, probe
from monitor_app.config.declarative import parse_config
from monitor_app.containers.discovery import reconcile
from monitor_app.containers.service_status import apply, probe_endpoints
from monitor_app.store.models import Asset, Event
from tests.assets.mariadb_server import PrivateMariaDB
from tests.containers.certs import make_ca, make_cert
from tests.containers.conftest import images, runner  # noqa: F401 - fixtures
from tests.services import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PASSWORD = "container-pw-" + secrets.token_hex(6)


@pytest.fixture()
def mariadb_files():
    directory = Path(tempfile.mkdtemp(prefix="dbmon-mariadb-docker-"))
    os.chmod(directory, 0o755)
    ca = make_ca(directory)
    crt, key = make_cert(directory, cn="mariadb-in-docker.test", days=20, ca=ca)
    try:
        yield PrivateMariaDB(directory, free_port(), crt, key).install(), str(ca[0])
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_labelled_mariadb_container_is_discovered_and_logged_into_over_verified_tls(
        sqlite_store, docker_engine, runner, mariadb_files, monkeypatch):  # noqa: F811
    server, ca = mariadb_files
    monkeypatch.setenv("SHOP_CONTAINER_PW", PASSWORD)
    config = parse_config({"containers": {"label_credentials": {
        "enabled": True, "allowed_env": ["SHOP_CONTAINER_PW"], "sslrootcert": ca}}}).containers
    ro = {p: {"bind": p, "mode": "ro"} for p in ("/usr", "/lib", "/lib64", "/etc", "/bin") if os.path.exists(p)}
    runner.run("dbmct/base:1", "mariadb", network="host", command=server.command(),
               binds={**ro, str(server.dir): {"bind": str(server.dir), "mode": "rw"}},
               labels={"dbmon.password_env": "SHOP_CONTAINER_PW", "dbmon.user": "monitor"})
    server.wait_ready()
    admin = server.admin()
    with admin.cursor() as cur:
        cur.execute("CREATE USER 'monitor'@'%%' IDENTIFIED BY %s", (PASSWORD,))
    admin.close()

    box = CredentialBox("test-secret-key")
    with sqlite_store.session() as s:
        reconcile(s, docker_engine, config, box)
    with sqlite_store.session() as s:
        asset = s.scalar(select(Asset).where(Asset.external_id == runner.name("mariadb")))
        assert asset.engine == "mariadb" and "+0.60 process 'mariadbd'" in asset.details["identification"]["reasons"]
        assert asset.details["monitoring"]["credentials"] == "labels"
        assert asset.connection == {"host": "127.0.0.1", "port": server.port, "user": "monitor", "database": None,
                                    "sslmode": "verify_identity", "sslrootcert": ca, "insecure": False}
        assert can_probe(asset) and password_for(asset, box) == PASSWORD
        result = probe(asset, PASSWORD, 5, ConnectionBudget(sqlite_store))
        assert result.up and result.tls["verified"] is True, result.error
        apply_probe(s, asset, result, 60)
        asset_id, endpoints = asset.id, asset.details["endpoints"]

    ports = probe_endpoints(endpoints, "mariadb", 3)  # the container probe, through MySQL's greeting
    assert ports.certificates[f"127.0.0.1:{server.port}"].fingerprint_sha256 == result.certificate.fingerprint_sha256
    with sqlite_store.session() as s:
        asset = s.get(Asset, asset_id)
        apply(s, asset, ports, thresholds=[30, 7, 1], interval=60)
        assert asset.status == "up" and asset.details["probe"]["server_version"] == result.server_version
        tls_events = s.scalars(select(Event).where(Event.asset_id == asset_id, Event.type.like("tls.%"))).all()
        assert [(e.type, e.payload["threshold_days"]) for e in tls_events] == [("tls.expiring", 30)]
