"""A Unix-socket proxy in front of the Docker socket that a test can cut and restore:
a real socket loss, as when the engine restarts, without restarting the shared engine."""

from __future__ import annotations

import os
import selectors
import socket
import threading


class DockerSocketProxy:
    def __init__(self, path: str, upstream: str = "/var/run/docker.sock"):
        self.path, self.upstream = path, upstream
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> "DockerSocketProxy":
        if os.path.exists(self.path):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            with self._lock:
                self._conns += [client, upstream]
                self.accepted += 1
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        """Drop every connection and stop listening: clients see the engine vanish."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        os.path.exists(self.path) and os.unlink(self.path)
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def restore(self) -> None:
        self.start()

    def close(self) -> None:
        self.cut()
