"""Fixtures for self-monitoring: a runtime on the test store, an injected clock, heartbeat rows as
the processes write them, and a real HTTP peer on 127.0.0.1 for the dead-man's switch."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor_app.config.settings import load_settings
from monitor_app.platform.runtime import Runtime
from monitor_app.platform.task_queues import QUEUES
from monitor_app.selfmon.components import Heartbeat, record


class Clock:
    def __init__(self):
        # Near the real time: the ledger's own writes (claim, finish) use the real clock.
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture()
def clock():
    return Clock()


def make_runtime(store, tmp_path, **overrides) -> Runtime:
    settings = load_settings(_env_file=None, data_dir=tmp_path / "var", database_url=store.url, secret_key="k",
                             config_file=tmp_path / "none.yaml", **overrides)
    sent: list[tuple] = []
    rt = Runtime(settings, sender=lambda *a: sent.append(a))
    rt.__dict__["store"] = store
    rt.sent = sent  # type: ignore[attr-defined]
    return rt


@pytest.fixture()
def rt(store, tmp_path):
    return make_runtime(store, tmp_path)


def beat(store, kind: str, instance: str, at: datetime, *, queues=(), interval: float = 10.0,
         detail: dict | None = None) -> None:
    """A heartbeat row written at `at`, as a process of that kind writes it."""
    record(store, [Heartbeat(kind, instance, "host-a", 4242, interval, at - timedelta(minutes=5), tuple(queues),
                             detail or {})], at)


def healthy_deployment(store, at: datetime, sources=("config", "files")) -> None:
    """One worker on every queue, beat, a leading watcher and its sources, all reporting at `at`."""
    beat(store, "worker", "w1@host-a", at, queues=QUEUES)
    beat(store, "beat", "beat@host-a", at)
    beat(store, "watcher", "watcher@host-a", at, detail={"leading": True, "sources": list(sources)})
    for source in sources:
        beat(store, "watch_source", f"watcher@host-a/{source}", at, detail={"source": source, "alive": True})


@dataclass
class Ping:
    method: str
    path: str
    body: bytes
    at: float


class PingReceiver:
    """A dead-man service on 127.0.0.1: records each request; `mode` 'ok', 'redirect' (302 to
    /elsewhere on itself), 'fail' (503) or 'stall' (answers after `stall_seconds`)."""

    def __init__(self):
        self.pings: list[Ping] = []
        self.mode = "ok"
        self.stall_seconds = 3.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.pings.append(Ping(self.command, self.path, body, time.monotonic()))
                if receiver.mode == "stall":
                    time.sleep(receiver.stall_seconds)
                if receiver.mode == "redirect" and not self.path.startswith("/elsewhere"):
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                else:
                    self.send_response(503 if receiver.mode == "fail" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/ping/abc123?token=s3cr3t-token") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture()
def receiver():
    peer = PingReceiver()
    yield peer
    peer.stop()
