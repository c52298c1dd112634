"""Container discovery, container probes and TLS probes against real failures: a Docker socket cut
and restored, a TLS endpoint that stops completing handshakes and starts again."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from sqlalchemy import select

from monitor_app.containers.service_status import apply, probe_endpoints
from monitor_app.errors import ProbeError
from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings
from monitor_app.store.models import Asset, Event
from tests.containers.certs import make_cert
from tests.containers.conftest import containers_config, images, runner  # noqa: F401 - fixtures
from tests.containers.socket_proxy import DockerSocketProxy
from tests.services import free_port
from workers.tasks.containers import probe_container_asset, reconcile_containers


def health_events(store) -> list[tuple[str, int | None, dict]]:
    with store.session() as s:
        return [(e.type, e.asset_id, e.payload) for e in s.scalars(
            select(Event).where(Event.type.like("%.check_%")).order_by(Event.id))]


@pytest.fixture()
def docker_proxy(tmp_path, docker_engine):
    proxy = DockerSocketProxy(str(tmp_path / "docker.sock")).start()
    yield proxy
    proxy.close()


@pytest.fixture()
def rt(tmp_path, sqlite_store, docker_proxy):
    config = tmp_path / "dbmon.yaml"
    config.write_text(f"containers:\n  docker_url: {docker_proxy.url}\n")
    runtime = Runtime(load_settings(data_dir=tmp_path, database_url=sqlite_store.url, secret_key="k",
                                    config_file=config), sender=lambda *a: None)
    runtime.__dict__["store"] = sqlite_store
    return runtime


@pytest.mark.docker
def test_discovery_and_probes_say_once_that_the_engine_is_gone_and_once_that_it_is_back(
        rt, sqlite_store, docker_proxy, runner):  # noqa: F811
    runner.run("dbmct/redis:7", "cache")
    reconcile_containers.domain_fn(rt)
    with sqlite_store.session() as s:
        cache = s.scalar(select(Asset.id).where(Asset.external_id == runner.name("cache")))
    probe_container_asset.domain_fn(rt, asset_id=cache)
    assert health_events(sqlite_store) == []

    docker_proxy.cut()
    for _ in range(3):
        with pytest.raises(ProbeError, match="docker engine unreachable"):
            reconcile_containers.domain_fn(rt)
        with pytest.raises(ProbeError, match="docker engine unreachable"):
            probe_container_asset.domain_fn(rt, asset_id=cache)
    failed = health_events(sqlite_store)
    assert [(t, a) for t, a, _ in failed] == [("containers.discovery.check_failed", None),
                                              ("containers.probe.check_failed", cache)]
    assert failed[0][2]["subject"] == "docker" and "docker engine unreachable" in failed[0][2]["error"]

    docker_proxy.restore()
    reconcile_containers.domain_fn(rt)
    probe_container_asset.domain_fn(rt, asset_id=cache)
    assert [(t, a) for t, a, _ in health_events(sqlite_store)[2:]] == [
        ("containers.discovery.check_recovered", None), ("containers.probe.check_recovered", cache)]


class Endpoint:
    """One port that answers either TLS handshakes or plain-text garbage, switchable by restarting."""

    def __init__(self, port: int, tls: ssl.SSLContext | None):
        self.tls = tls
        self.sock = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.tls is not None:
                    with self.tls.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                else:
                    conn.sendall(b"-ERR not tls\r\n")
                    conn.close()
            except (ssl.SSLError, OSError):
                pass

    def close(self):
        # shutdown wakes the thread blocked in accept(), so the port is free to bind again at once.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def test_a_tls_endpoint_that_stops_handshaking_is_a_failing_tls_probe_until_it_works(sqlite_store, tmp_path):
    crt, key = make_cert(tmp_path, stem="svc", cn="svc.test", days=90)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    port = free_port()
    with sqlite_store.session() as s:
        asset = Asset(kind="database", engine="redis", name="cache", source="docker", external_id="cache",
                      labels={}, connection={}, details={"endpoints": [{"host": "127.0.0.1", "port": port}]},
                      status="up")
        s.add(asset)
        s.flush()
        asset_id = asset.id

    def probe():
        with sqlite_store.session() as s:
            asset = s.get(Asset, asset_id)
            return apply(s, asset, probe_endpoints(asset.details["endpoints"], "redis", 2), thresholds=[30, 7, 1],
                         interval=30)

    server = Endpoint(port, context)
    try:
        assert probe()["tls"] == [f"127.0.0.1:{port}"]
        server.close()
        server = Endpoint(port, None)  # the same port, now without TLS
        probe()
        probe()
        assert [(t, a) for t, a, _ in health_events(sqlite_store)] == [("tls.check_failed", asset_id)]
        assert health_events(sqlite_store)[0][2]["error"].startswith(f"127.0.0.1:{port}: ")
        server.close()
        server = Endpoint(port, context)
        probe()
        assert [t for t, _, _ in health_events(sqlite_store)] == ["tls.check_failed", "tls.check_recovered"]
    finally:
        server.close()


def test_a_plain_text_service_is_not_a_failing_tls_probe(sqlite_store):
    port = free_port()
    server = Endpoint(port, None)
    try:
        with sqlite_store.session() as s:
            asset = Asset(kind="database", engine="redis", name="plain", source="docker", external_id="plain",
                          labels={}, connection={}, details={}, status="up")
            s.add(asset)
            s.flush()
            result = probe_endpoints([{"host": "127.0.0.1", "port": port}], "redis", 2)
            assert result.tls_errors  # the handshake did fail ...
            apply(s, asset, result, thresholds=[30], interval=30)
        assert health_events(sqlite_store) == []  # ... but TLS was never there to fail
    finally:
        server.close()
