"""Real notification peers for tests and benchmarks: an HTTP receiver that records every
request (webhook or Slack-format) and can be told to fail or stall, and an in-process
SMTP server with STARTTLS."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body)


class HttpReceiver:
    """Modes: 'ok'; 'fail' (answers `fail_status`); 'stall' (sleeps `stall_seconds` first).
    `stop()` closes the socket (connection refused), `start()` brings it back on the same port."""

    def __init__(self, port: int = 0, slack_style: bool = False):
        self.requests: list[Received] = []
        self.mode = "ok"
        self.fail_status = 503
        self.stall_seconds = 5.0
        self.retry_after: str | None = None
        self.slack_style = slack_style
        self.arrived = threading.Condition()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def port(self) -> int:
        return self._port

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.mode == "stall":
                    time.sleep(receiver.stall_seconds)
                if receiver.mode == "fail":
                    self.send_response(receiver.fail_status)
                    if receiver.retry_after:
                        self.send_header("Retry-After", receiver.retry_after)
                    self.end_headers()
                    self.wfile.write(b"unavailable")
                    return
                with receiver.arrived:
                    receiver.requests.append(Received(self.path, dict(self.headers), body, time.monotonic()))
                    receiver.arrived.notify_all()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if receiver.slack_style else b"{}")
                except BrokenPipeError:
                    pass  # the sender died or gave up while we stalled: what a real peer sees too

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        server.allow_reuse_address = True
        self._port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
            return list(self.requests)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class SmtpPeer:
    port: int
    ca_file: str
    messages: list = field(default_factory=list)
    tls_used: list = field(default_factory=list)
    controller: object = None

    def stop(self) -> None:
        self.controller.stop()


def start_smtp(directory: Path, require_starttls: bool = True) -> SmtpPeer:
    from aiosmtpd.controller import Controller
    from email import message_from_bytes, policy

    cert, key = self_signed_cert(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    peer = SmtpPeer(port=0, ca_file=str(cert))

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            peer.tls_used.append(session.ssl is not None)
            peer.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 Message accepted"

    from tests.services import free_port

    peer.port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=peer.port, tls_context=context,
                            require_starttls=require_starttls)
    controller.start()
    peer.controller = controller
    return peer
