"""The event follower wired straight to the domain code, as the watcher and worker would run it."""

from __future__ import annotations

import threading

import docker
from sqlalchemy import select

from monitor_app.containers.discovery import handle_event, reconcile
from monitor_app.containers.event_stream import Backoff, CursorStore, EventFollower
from monitor_app.store.models import Asset, Event
from tests.containers.conftest import wait_for


class Harness:
    """The follower handing each event straight to the domain code (what the task would do)."""

    def __init__(self, store, client, config, client_factory=None):
        self.store, self.client, self.config = store, client, config
        self.handled: list[dict] = []
        self.resyncs = 0
        self.lock = threading.Lock()
        self.follower = None
        self.client_factory = client_factory or (lambda: docker.from_env(timeout=30))

    def on_event(self, kwargs):
        with self.lock, self.store.session() as s:
            handle_event(s, self.client, kwargs, self.config)
            self.handled.append(kwargs)

    def on_resync(self):
        with self.lock, self.store.session() as s:
            reconcile(s, self.client, self.config)
            self.resyncs += 1

    def start(self):
        self.follower = EventFollower(self.client_factory, CursorStore(self.store), self.on_event, self.on_resync,
                                      backoff=Backoff(0.05, 0.5))
        self.thread = self.follower.start()
        assert self.follower.connected.wait(15)
        return self

    def stop(self):
        self.follower.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()

    def events(self, name, type_prefix="container."):
        with self.store.session() as s:
            asset = s.scalar(select(Asset).where(Asset.external_id == name))
            if asset is None:
                return []
            return list(s.scalars(select(Event).where(Event.asset_id == asset.id, Event.type.startswith(type_prefix))
                                  .order_by(Event.observed_at, Event.id)))

    def wait_event(self, name, type_, timeout=20, **payload):
        def found():
            return [e for e in self.events(name) if e.type == type_
                    and all(e.payload.get(k) == v for k, v in payload.items())]
        return wait_for(found, timeout)
