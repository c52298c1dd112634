"""LISTEN on every PostgreSQL asset allowed an event trigger; one schema check per burst.

The asset list is re-read periodically, so assets added by the config file or discovery
are picked up and removed ones are let go. A listener that stops working records
`schema.listener_failed` (detection falls back to scheduled checks meanwhile) and, once it
listens again, `schema.listener_recovered`.
"""

from __future__ import annotations

import time

import logging

from sqlalchemy import select

from monitor_app.assets.config_assets import password_for
from monitor_app.platform.event_log import record_event
from monitor_app.schema.check import postgres_dsn
from monitor_app.schema.listener import Batch, SchemaListener
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset
from workers.watch_sources.refreshing import RefreshingSource

log = logging.getLogger("dbmon.watcher.pg_notify")


class PgNotifySource(RefreshingSource):
    thread_name = "pg-notify-source"

    def __init__(self, runtime, emit):
        super().__init__(runtime, emit)
        self.listeners: dict[int, tuple[str, SchemaListener]] = {}

    @classmethod
    def wanted(cls, runtime) -> bool:
        settings = runtime.config.schema_checks
        return settings.event_triggers or any(a.event_trigger for a in settings.assets.values())

    def start(self) -> None:
        self.start_refreshing()

    def wanted_assets(self) -> dict[int, str]:
        settings = self.runtime.config.schema_checks
        with self.runtime.store.session() as s:
            assets = s.scalars(select(Asset).where(Asset.engine == "postgresql", Asset.status != "gone")).all()
            # A discovered container without credentials has no database to listen on; libpq's
            # defaults would reach whatever server owns the local socket instead.
            return {a.id: postgres_dsn(a.connection, password_for(a, self.runtime.credentials))
                    for a in assets if settings.trigger_allowed(a.name) and (a.connection or {}).get("database")}

    def refresh(self) -> None:
        settings = self.runtime.config.schema_checks
        wanted = self.wanted_assets()
        for asset_id in list(self.listeners):
            if wanted.get(asset_id) != self.listeners[asset_id][0]:
                self.listeners.pop(asset_id)[1].stop()
        for asset_id, dsn in wanted.items():
            if asset_id not in self.listeners:
                listener = SchemaListener(dsn, self._on_batch(asset_id), quiet=settings.quiet_seconds,
                                          max_wait=settings.max_wait_seconds, name=f"schema-listener-{asset_id}",
                                          on_failure=self._on_failure(asset_id),
                                          on_recovery=self._on_recovery(asset_id))
                listener.start()
                self.listeners[asset_id] = (dsn, listener)

    def _on_batch(self, asset_id: int):
        def handle(batch: Batch) -> None:
            self.emit("schema.check", {"asset_id": asset_id, "context": batch.as_context()})
        return handle

    def _record(self, asset_id: int, type_: str, severity: str, what: str, payload: dict) -> None:
        with self.runtime.store.session() as s:
            asset = s.get(Asset, asset_id)
            record_event(s, type=type_, severity=severity, asset_id=asset_id,
                         summary=f"{asset.name if asset else asset_id}: schema change listener {what}", payload=payload)

    def _on_failure(self, asset_id: int):
        def failed(reason: str) -> None:
            self._record(asset_id, "schema.listener_failed", "warning",
                         f"stopped ({reason}); retrying, scheduled checks meanwhile",
                         {"reason": reason, "failed_at": utcnow().isoformat()})
        return failed

    def _on_recovery(self, asset_id: int):
        def recovered(seconds_down: float) -> None:
            self._record(asset_id, "schema.listener_recovered", "info", f"listening again after {seconds_down:.1f} s",
                         {"seconds_down": round(seconds_down, 3)})
        return recovered

    def stop(self, timeout: float = 3.0) -> None:
        listeners = [listener for _, listener in self.listeners.values()]
        # Every listener wakes within a second of being asked: ask all first, then wait once,
        # so stopping a thousand takes about as long as stopping one.
        for listener in listeners:
            listener.request_stop()
        self.stop_refreshing()
        deadline = time.monotonic() + timeout
        for listener in listeners:
            listener.stop(max(0.0, deadline - time.monotonic()))
        self.listeners.clear()
