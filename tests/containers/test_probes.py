"""TCP and TLS probes against real sockets: a plain TLS server and the host's PostgreSQL."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from monitor_app.containers.probes import fetch_certificate, tcp_probe, tls_findings
from tests.containers.certs import make_cert
from tests.services import free_port, missing, pg_admin_connect, port_open


class TlsServer:
    """Accepts connections and completes TLS handshakes with the given certificate until closed."""

    def __init__(self, crt, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(crt, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    def close(self):
        self.sock.close()


@pytest.fixture()
def tls_server(tmp_path):
    servers = []

    def start(**kw):
        crt, key = make_cert(tmp_path, stem=f"s{len(servers)}", **kw)
        servers.append(TlsServer(crt, key))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_it_measures_connect_time_and_reports_refused_ports():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        up = tcp_probe("127.0.0.1", srv.getsockname()[1], 2)
    assert up.up and up.connect_ms is not None and up.connect_ms < 1000
    down = tcp_probe("127.0.0.1", free_port(), 2)
    assert not down.up and "refused" in down.error.lower()


def test_it_reads_a_plain_tls_certificate(tls_server):
    server = tls_server(cn="redis.test", days=45)
    cert = fetch_certificate("127.0.0.1", server.port, "redis", 3)
    assert cert is not None
    assert cert.subject == "CN=redis.test" and cert.self_signed
    assert cert.sans == ["redis.test", "127.0.0.1"]
    assert 44 < cert.days_left <= 45


def test_a_service_without_tls_has_no_certificate():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]

        def answer_garbage():
            conn, _ = srv.accept()
            conn.recv(1024)
            conn.sendall(b"-ERR unknown command\r\n")
            conn.close()

        threading.Thread(target=answer_garbage, daemon=True).start()
        assert fetch_certificate("127.0.0.1", port, "redis", 3) is None


def test_it_negotiates_tls_with_postgresql_through_sslrequest():
    if not port_open("127.0.0.1", 5432):
        missing("PostgreSQL on 127.0.0.1:5432")
    cert = fetch_certificate("127.0.0.1", 5432, "postgresql", 3)
    plain = fetch_certificate("127.0.0.1", 5432, "redis", 3)
    assert plain is None  # PostgreSQL never speaks TLS without the SSLRequest first
    conn = pg_admin_connect()
    with conn.cursor() as cur:
        cur.execute("SHOW ssl")
        ssl_on = cur.fetchone()[0] == "on"
    conn.close()
    # ssl=off answers the SSLRequest with 'N': no certificate, and no error either.
    assert (cert is not None) == ssl_on


def test_thresholds_fire_once_per_certificate_and_expiry_and_changes_are_events(tls_server):
    soon = fetch_certificate("127.0.0.1", tls_server(days=5).port, "redis", 3)
    findings = tls_findings("pg", "h:1", None, soon, [30, 7, 1])
    assert [(f.type, f.severity, f.payload["threshold_days"]) for f in findings] == [("tls.expiring", "warning", 7)]
    again = tls_findings("pg", "h:1", soon.to_dict(), soon, [30, 7, 1])
    assert again[0].dedupe_key == findings[0].dedupe_key  # same threshold, same certificate: one event

    nearly = fetch_certificate("127.0.0.1", tls_server(days=0.5).port, "redis", 3)
    changed = tls_findings("pg", "h:1", soon.to_dict(), nearly, [30, 7, 1])
    assert [(f.type, f.severity) for f in changed] == [("tls.changed", "info"), ("tls.expiring", "critical")]

    expired = fetch_certificate("127.0.0.1", tls_server(days=-1).port, "redis", 3)
    assert [f.type for f in tls_findings("pg", "h:1", None, expired, [30, 7, 1])] == ["tls.expired"]
    assert tls_findings("pg", "h:1", None, fetch_certificate("127.0.0.1", tls_server(days=200).port, "redis", 3),
                        [30, 7, 1]) == []
    assert tls_findings("pg", "h:1", soon.to_dict(), None, [30])[0].type == "tls.removed"
