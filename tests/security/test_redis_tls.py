"""The distributed broker over TLS: a real redis-server listening only on a TLS port."""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import quote

import pytest

from monitor_app.platform.dependency_health import check_broker
from tests.harness import Deployment, wait_for
from tests.security.tls_material import TestCA
from tests.services import free_port, missing, port_open

# Every test runs a TLS redis-server and dbmon processes.
pytestmark = [pytest.mark.slow, pytest.mark.deployment]


@pytest.fixture()
def tls_redis(tmp_path):
    if not shutil.which("redis-server"):
        missing("redis-server binary")
    ca = TestCA(tmp_path / "pki")
    server = ca.issue("redis", dns=("localhost",), ips=("127.0.0.1",))
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--tls-cert-file", str(server.cert), "--tls-key-file", str(server.key),
                             "--tls-ca-cert-file", str(ca.cert), "--tls-auth-clients", "no",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 10, what="redis-server --tls-port")
        if proc.poll() is not None:
            missing("a redis-server built with TLS")
        yield port, ca
    finally:
        proc.kill()
        proc.wait()


def rediss_url(port: int, ca, **query: str) -> str:
    params = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items())
    return f"rediss://127.0.0.1:{port}/0" + (f"?{params}" if params else "")


def test_tasks_flow_through_a_rediss_broker(tmp_path, tls_redis):
    port, ca = tls_redis
    d = Deployment("embedded", tmp_path)
    try:
        d.env["DBMON_BROKER_URL"] = rediss_url(port, ca, ssl_ca_certs=ca.cert)
        d.migrate()
        assert check_broker(d.settings())["ok"] is True
        d.start_worker()
        run = d.scan("metrics.host_sample", timeout=60)
        assert run.status == "done", (run.error, d.log("worker"))
        d.start("beat", "beat")  # beat's lock lives in the same Redis, over the same TLS
        wait_for(lambda: "acquired lock" in d.log("beat").lower(), 60, 0.2, what="beat lock in Redis")
    finally:
        d.close()


def test_a_rediss_broker_with_an_unknown_certificate_is_refused(tmp_path, tls_redis):
    port, ca = tls_redis
    stranger = TestCA(tmp_path / "other")
    d = Deployment("embedded", tmp_path)
    d.env["DBMON_BROKER_URL"] = rediss_url(port, ca, ssl_ca_certs=stranger.cert)
    health = check_broker(d.settings())
    assert health["ok"] is False
    # And the default is to verify: without a CA the system trust store does not know this CA either.
    d.env["DBMON_BROKER_URL"] = rediss_url(port, ca)
    assert check_broker(d.settings())["ok"] is False
