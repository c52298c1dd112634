"""HTTP peers for redirect tests: one that answers every request with a redirect, and an
"internal" service that records whatever reaches it and answers with a secret body."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Peer:
    def __init__(self, respond):
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with peer.lock:
                    peer.requests.append((self.command, self.path, dict(self.headers), body))
                respond(self)

            do_GET = do_POST = do_PUT = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class Redirector(_Peer):
    def __init__(self, status: int, location: str):
        def respond(handler):
            handler.send_response(status)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        super().__init__(respond)


class InternalService(_Peer):
    """Stands for an admin endpoint only reachable from inside: it answers 403 with a body
    that must never end up in dbmon's store."""

    def __init__(self, secret: str):
        body = f"internal-only: {secret}".encode()

        def respond(handler):
            handler.send_response(403)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(body)
        super().__init__(respond)
