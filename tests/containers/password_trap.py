"""A fake PostgreSQL server that asks every client for its password in clear text and keeps it.

It speaks just enough of the protocol: answers SSLRequest with `N`, or with `S` and a TLS
handshake when given a certificate (so a client that verifies certificates gets as far as
authentication), then sends AuthenticationCleartextPassword and records the reply."""

from __future__ import annotations

import socket
import socketserver
import ssl
import struct
import threading

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104
AUTH_CLEARTEXT = b"R" + struct.pack("!ii", 8, 3)
AUTH_FAILED = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"


def _recv_exact(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client closed")
        data += chunk
    return data


class PasswordTrap:
    def __init__(self, certfile=None, keyfile=None):
        self.passwords: list[str] = []
        self.startups: list[dict] = []
        self.tls_handshakes = 0
        self.lock = threading.Lock()
        self.tls = None
        if certfile:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.load_cert_chain(certfile, keyfile)
        trap = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock = self.request
                sock.settimeout(5)
                try:
                    trap._serve(sock)
                except (OSError, ssl.SSLError, ConnectionError, struct.error):
                    pass  # the client hung up: what a careful client does

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _serve(self, sock: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", _recv_exact(sock, 8))
            if code == SSL_REQUEST and self.tls is not None:
                sock.sendall(b"S")
                sock = self.tls.wrap_socket(sock, server_side=True)
                with self.lock:
                    self.tls_handshakes += 1
                continue
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                sock.sendall(b"N")
                continue
            break
        fields = _recv_exact(sock, length - 8).split(b"\0")
        with self.lock:
            self.startups.append({k.decode(): v.decode() for k, v in zip(fields[0::2], fields[1::2], strict=False) if k})
        sock.sendall(AUTH_CLEARTEXT)
        kind = _recv_exact(sock, 1)
        size = struct.unpack("!i", _recv_exact(sock, 4))[0]
        body = _recv_exact(sock, size - 4)
        if kind == b"p":
            with self.lock:
                self.passwords.append(body.rstrip(b"\0").decode(errors="replace"))
        sock.sendall(b"E" + struct.pack("!i", len(AUTH_FAILED) + 4) + AUTH_FAILED)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
