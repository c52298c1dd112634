"""A fake MySQL server that offers TLS, then tries to get the client's password itself.

It speaks just enough of the connection phase: a greeting offering TLS and naming an
authentication plugin, the switch to TLS after the client's SSL request, the client's handshake
response, and then one of the demands that make a client send its password rather than a
scramble. Everything the client sends after TLS is kept, so a test can look for the password in it.

Demands:
- `clear_password`: an auth switch to `mysql_clear_password`;
- `sha256_greeting`: a greeting naming `sha256_password` (whose first answer over TLS is the password);
- `caching_sha2_full`: `caching_sha2_password` answering the scramble with "full authentication needed".

And one that asks for nothing more: `caching_sha2_fast` accepts the scramble (a cached account);
`logged_in` says the client got past authentication and sent its first command.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import struct
import threading

PROTOCOL_41, SSL, SECURE_CONNECTION = 0x200, 0x800, 0x8000
PLUGIN_AUTH, LENENC_CLIENT_DATA = 0x80000, 0x200000
CAPABILITIES = 0x1 | PROTOCOL_41 | SSL | SECURE_CONNECTION | PLUGIN_AUTH | LENENC_CLIENT_DATA
GREETING_PLUGIN = {"clear_password": b"mysql_native_password", "sha256_greeting": b"sha256_password",
                   "caching_sha2_full": b"caching_sha2_password", "caching_sha2_fast": b"caching_sha2_password"}
OK = b"\x00\x00\x00\x02\x00\x00\x00"


def _recv_exact(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client closed")
        data += chunk
    return data


def _read_packet(sock) -> tuple[int, bytes]:
    header = _recv_exact(sock, 4)
    return header[3], _recv_exact(sock, int.from_bytes(header[:3], "little"))


def _send_packet(sock, seq: int, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload)


def greeting(plugin: bytes) -> bytes:
    salt = b"abcdefgh" + b"ijklmnopqrst"
    return (b"\x0a" + b"8.0.99-trap\0" + struct.pack("<I", 7) + salt[:8] + b"\0"
            + struct.pack("<H", CAPABILITIES & 0xFFFF) + b"\x2d" + struct.pack("<H", 2)
            + struct.pack("<H", CAPABILITIES >> 16) + bytes([21]) + b"\0" * 10 + salt[8:] + b"\0" + plugin + b"\0")


class MySqlPasswordTrap:
    def __init__(self, demand: str, certfile, keyfile):
        self.demand = demand
        self.received: list[bytes] = []  # every packet the client sent after TLS
        self.tls_handshakes = 0
        self.logged_in = False
        self.lock = threading.Lock()
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(certfile, keyfile)
        trap = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock = self.request
                sock.settimeout(3)
                try:
                    trap._serve(sock)
                except (OSError, ssl.SSLError, ConnectionError, struct.error):
                    pass  # the client hung up: what a careful client does

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def saw(self, secret: str) -> bool:
        with self.lock:
            return any(secret.encode() in packet for packet in self.received)

    def _keep(self, packet: bytes) -> None:
        with self.lock:
            self.received.append(packet)

    def _serve(self, sock: socket.socket) -> None:
        _send_packet(sock, 0, greeting(GREETING_PLUGIN[self.demand]))
        _read_packet(sock)  # the SSL request
        sock = self.tls.wrap_socket(sock, server_side=True)
        with self.lock:
            self.tls_handshakes += 1
        seq, response = _read_packet(sock)
        self._keep(response)
        if self.demand == "clear_password":
            _send_packet(sock, seq + 1, b"\xfe" + b"mysql_clear_password\0")
        elif self.demand == "caching_sha2_full":
            _send_packet(sock, seq + 1, b"\x01\x04")
        elif self.demand == "caching_sha2_fast":
            _send_packet(sock, seq + 1, b"\x01\x03")
            _send_packet(sock, seq + 2, OK)
            self._keep(_read_packet(sock)[1])  # the first command: authentication is over
            self.logged_in = True
            return
        else:
            _send_packet(sock, seq + 1, b"\xff" + struct.pack("<H", 1045) + b"#28000trap says no")
            return
        _, answer = _read_packet(sock)
        self._keep(answer)
        _send_packet(sock, seq + 3, b"\xff" + struct.pack("<H", 1045) + b"#28000trap says no")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
