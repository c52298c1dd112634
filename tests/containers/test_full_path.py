"""The whole path with a real PostgreSQL (TLS on) inside a real container on the host network:
the container starts -> discovered -> asset -> connected -> reachable, then stops -> down.
Credentials come from the container's labels, opted in by the config: the server accepts only
SCRAM over TLS, with a certificate issued by a CA dbmon is told to trust."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import shutil

from pathlib import Path

import pytest
from sqlalchemy import select

from monitor_app.assets.config_assets import password_for
from monitor_app.config.declarative import parse_config
from monitor_app.containers.discovery import refresh_asset
from monitor_app.containers.service_status import apply, probe_endpoints
from monitor_app.access.credential_box import CredentialBox
from monitor_app.assets.reachability import apply_probe, can_probe, probe
from monitor_app.store.models import Asset, Event
from tests.containers.certs import make_ca, make_cert
from tests.containers.conftest import pg_bin, wait_for
from tests.containers.follow import Harness
from tests.services import free_port, missing

pytestmark = [pytest.mark.docker, pytest.mark.slow]


PASSWORD = "full-path-pw"


@pytest.fixture()
def pg_data_dir():
    """An initialised cluster owned by the postgres user that takes SCRAM over TLS only from
    127.0.0.1, with a CA-issued certificate (5 days left)."""
    bindir = pg_bin()
    if bindir is None:
        missing("PostgreSQL server binaries under /usr/lib/postgresql")
    try:
        pg = pwd.getpwnam("postgres")
    except KeyError:
        missing("a postgres system user")
    root = tempfile.mkdtemp(prefix="dbmon-pgdocker-")
    os.chmod(root, 0o755)
    os.chown(root, pg.pw_uid, pg.pw_gid)
    pwfile = Path(root) / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    os.chown(pwfile, pg.pw_uid, pg.pw_gid)
    subprocess.run([f"{bindir}/initdb", "-D", f"{root}/db", "-U", "postgres", f"--pwfile={pwfile}",
                    "--auth-local=trust", "--auth-host=scram-sha-256"], check=True,
                   capture_output=True, user=pg.pw_uid, group=pg.pw_gid, cwd=root, timeout=120)
    (Path(root) / "db" / "pg_hba.conf").write_text("local all all trust\n"
                                                   "hostssl all all 127.0.0.1/32 scram-sha-256\n")
    ca = make_ca(Path(root))
    crt, key = make_cert(Path(root), cn="pg-in-docker.test", days=5, ca=ca)
    for f in (crt, key):
        os.chown(f, pg.pw_uid, pg.pw_gid)
    yield bindir, root, pg.pw_uid, str(ca[0])
    shutil.rmtree(root, ignore_errors=True)


def test_a_postgresql_container_is_discovered_connected_and_reachable(sqlite_store, docker_engine, runner,
                                                                      pg_data_dir, monkeypatch, connection_budget):
    bindir, root, uid, ca = pg_data_dir
    port = free_port()
    monkeypatch.setenv("FULL_PATH_PG_PASSWORD", PASSWORD)
    containers_config = parse_config({"containers": {"label_credentials": {
        "enabled": True, "allowed_env": ["FULL_PATH_PG_PASSWORD"], "sslrootcert": ca}}}).containers
    box = CredentialBox("test-secret-key")
    h = Harness(sqlite_store, docker_engine, containers_config).start()
    try:
        ro = {p: {"bind": p, "mode": "ro"} for p in ("/usr", "/lib", "/lib64", "/etc", "/bin") if os.path.exists(p)}
        # A neutral image: nothing but the running process and its socket says "PostgreSQL".
        cid = runner.run("dbmct/base:1", "pg", network="host", user=f"{uid}:{uid}",
                         binds={**ro, root: {"bind": "/data", "mode": "rw"}},
                         labels={"dbmon.password_env": "FULL_PATH_PG_PASSWORD", "dbmon.user": "postgres"},
                         command=[f"{bindir}/postgres", "-D", "/data/db", "-p", str(port), "-k", "/data",
                                  "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on",
                                  "-c", "ssl_cert_file=/data/server.crt", "-c", "ssl_key_file=/data/server.key"])
        name = runner.name("pg")
        h.wait_event(name, "container.start")

        # Discovered, by process name, with credentials from the label, and the data dir recorded.
        def discovered():
            with sqlite_store.session() as s:
                return s.scalar(select(Asset.id).where(Asset.external_id == name))
        wait_for(discovered, 10)
        with sqlite_store.session() as s:
            asset = s.scalar(select(Asset).where(Asset.external_id == name))
            assert asset.engine == "postgresql" and asset.kind == "database"
            assert "+0.60 process 'postgres'" in asset.details["identification"]["reasons"]
            assert asset.details["monitoring"]["credentials"] == "labels"
            assert {"host_path": root, "container_path": "/data", "type": "bind"} in asset.details["data_dirs"]
            asset_id = asset.id

        # Connected: once the server listens, its real port (not EXPOSE) becomes the endpoint.
        def listening():
            with sqlite_store.session() as s:
                a = s.get(Asset, asset_id)
                refresh_asset(s, docker_engine, a, containers_config, box)
                eps = a.details["endpoints"]
                return eps if eps and probe_endpoints(eps, "postgresql", 2).ports[0].up else None
        eps = wait_for(listening, 20, 0.2)
        assert eps[0] == {"host": "127.0.0.1", "port": port, "container_port": port, "via": "host network"}

        result = probe_endpoints(eps, "postgresql", 3)
        with sqlite_store.session() as s:
            a = s.get(Asset, asset_id)
            summary = apply(s, a, result, thresholds=[30, 7, 1], interval=30)
            assert a.connection == {"host": "127.0.0.1", "port": port, "user": "postgres", "database": "postgres",
                                    "sslmode": "verify-full", "sslrootcert": ca, "insecure": False}
            tls = a.details["tls"][f"127.0.0.1:{port}"]
            assert tls["subject"] == "CN=pg-in-docker.test" and 4 < tls["days_left"] <= 5
            expiring = s.scalars(select(Event).where(Event.asset_id == asset_id, Event.type == "tls.expiring")).one()
            assert expiring.severity == "warning" and expiring.payload["threshold_days"] == 7
        assert summary["ports"][f"127.0.0.1:{port}"]["up"]

        # Reachable: a real SCRAM login over verified TLS with the handed-over credentials.
        with sqlite_store.session() as s:
            a = s.get(Asset, asset_id)
            assert password_for(a, box) == PASSWORD
            assert can_probe(a)
            # Both probes before the write: a connection slot is a row in this same SQLite store,
            # which this session's uncommitted write would hold locked.
            outcome = probe(a, password_for(a, box), 5, connection_budget)
            assert outcome.up, outcome.error
            wrong = probe(a, "not-the-password", 5, connection_budget)
            assert not wrong.up and "password authentication failed" in wrong.error, wrong.error
            assert apply_probe(s, a, outcome, 30) == "up"
            assert outcome.server_version.split(".")[0] == bindir.split("/")[-2]

        # Stopped on request: planned die, `asset.stopped`; the port and the login fail, and that is no outage.
        runner.client.api.stop(cid, timeout=5)
        die = h.wait_event(name, "container.die")[0]
        assert die.payload["planned"] is True and die.payload["exit_code"] in (0, 143)
        with sqlite_store.session() as s:
            a = s.get(Asset, asset_id)
            assert a.status == "stopped"
            login = probe(a, password_for(a, box), 3, connection_budget)
            refresh_asset(s, docker_engine, a, containers_config, box)
            assert a.details["endpoints"] == eps  # kept: a stopped container is probed where it served
            apply(s, a, probe_endpoints(a.details["endpoints"], "postgresql", 2), thresholds=[30, 7, 1], interval=30)
            assert not login.up and apply_probe(s, a, login, 30) is None and a.status == "stopped"
            events = list(s.scalars(select(Event).where(Event.asset_id == asset_id).order_by(Event.id)))
        types = [e.type for e in events]
        assert types.index("asset.registered") < types.index("asset.up") < types.index("asset.stopped") \
            < types.index("service.port_down")
        assert "asset.down" not in types
        assert next(e for e in events if e.type == "asset.stopped").severity == "info"
    finally:
        h.stop()
