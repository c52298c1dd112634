"""LISTEN on PostgreSQL assets allowed an event trigger; one schema check per burst.

Each listener holds one of its server's budgeted connection slots, so a server gets at most its
budget less one listeners, for its most recently changed databases (`schema.listen_budget`);
its other databases are pre-checked in turn by one `FallbackPrecheck` thread per server.
The asset list is re-read periodically, so assets added by the config file or discovery
are picked up, removed ones are let go and the LISTEN set follows the latest changes. A listener that stops working records
`schema.listener_failed` (detection falls back to scheduled checks meanwhile) and, once it
listens again, `schema.listener_recovered`.
"""

from __future__ import annotations

import time
from functools import partial

import logging

import psycopg2
from sqlalchemy import func, select

from monitor_app.assets.config_assets import password_for
from monitor_app.assets.connection_budget import server_key
from monitor_app.platform.event_log import record_event
from monitor_app.schema.check import postgres_dsn
from monitor_app.schema.fallback_precheck import FallbackPrecheck
from monitor_app.schema.listen_budget import Target, choose
from monitor_app.schema.listener import Batch, SchemaListener
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset
from monitor_app.store.models.schema import SchemaChangeSet, SchemaWatchState
from monitor_app.store.models.servers import MonitoredServer
from workers.watch_sources.refreshing import RefreshingSource

log = logging.getLogger("dbmon.watcher.pg_notify")


class PgNotifySource(RefreshingSource):
    thread_name = "pg-notify-source"

    def __init__(self, runtime, emit):
        super().__init__(runtime, emit)
        self.listeners: dict[int, tuple[str, SchemaListener]] = {}
        self.fallbacks: dict[str, FallbackPrecheck] = {}
        self.budget = runtime.connection_budget

    @classmethod
    def wanted(cls, runtime) -> bool:
        settings = runtime.config.schema_checks
        return settings.event_triggers or any(a.event_trigger for a in settings.assets.values())

    def start(self) -> None:
        self.start_refreshing()

    def wanted_targets(self) -> list[Target]:
        settings = self.runtime.config.schema_checks
        with self.runtime.store.session() as s:
            assets = s.scalars(select(Asset).where(Asset.engine == "postgresql", Asset.status != "gone")).all()
            changed = dict(s.execute(select(SchemaChangeSet.asset_id, func.max(SchemaChangeSet.detected_at))
                                     .group_by(SchemaChangeSet.asset_id)).all())
            # A discovered container without credentials has no database to listen on; libpq's
            # defaults would reach whatever server owns the local socket instead.
            return [Target(a.id, server_key(a.connection), postgres_dsn(a.connection, password_for(a, self.runtime.credentials)),
                           changed.get(a.id))
                    for a in assets if settings.trigger_allowed(a.name) and (a.connection or {}).get("database")]

    def wanted_assets(self) -> dict[int, str]:
        return {t.asset_id: t.dsn for t in self.wanted_targets()}

    def _budgets(self, targets: list[Target]) -> dict[str, int]:
        servers = {t.server: t.dsn for t in targets}
        rows = self._server_rows(set(servers))
        unknown = [server for server in servers if rows.get(server) is None or rows[server].cap is None]
        for server in unknown:
            self.budget.read_limits(server, partial(psycopg2.connect, servers[server], connect_timeout=5,
                                                    application_name="dbmon-listener"))
        if unknown:
            rows = self._server_rows(set(servers))
            if any(rows.get(server) is None or rows[server].cap is None for server in servers):
                self.refresh_again_in = 5.0  # a server not reached yet: look again soon
        return {server: self.budget.budget_for(rows.get(server), server) for server in servers}

    def _server_rows(self, servers: set[str]) -> dict[str, MonitoredServer]:
        with self.runtime.store.session() as s:
            return {row.server: row for row in s.scalars(select(MonitoredServer).where(MonitoredServer.server.in_(servers)))}

    def refresh(self) -> None:
        targets = self.wanted_targets()
        budgets = self._budgets(targets)
        listened, fallback = choose(targets, lambda server: budgets[server])
        self._refresh_listeners({t.asset_id: t for t in listened})
        self._refresh_fallbacks(fallback)

    def _refresh_listeners(self, wanted: dict[int, Target]) -> None:
        settings = self.runtime.config.schema_checks
        leaving = [self.listeners.pop(asset_id)[1] for asset_id in list(self.listeners)
                   if wanted.get(asset_id) is None or wanted[asset_id].dsn != self.listeners[asset_id][0]]
        for listener in leaving:  # ask all, then wait once: their slots come free for the newcomers
            listener.request_stop()
        for listener in leaving:
            listener.stop()
        for asset_id, target in wanted.items():
            if asset_id not in self.listeners:
                listener = SchemaListener(target.dsn, self._on_batch(asset_id), quiet=settings.quiet_seconds,
                                          max_wait=settings.max_wait_seconds, name=f"schema-listener-{asset_id}",
                                          on_failure=self._on_failure(asset_id),
                                          on_recovery=self._on_recovery(asset_id),
                                          budget=self.budget, server=target.server)
                listener.start()
                self.listeners[asset_id] = (target.dsn, listener)

    def _refresh_fallbacks(self, wanted: dict[str, list[Target]]) -> None:
        for server in [s for s in self.fallbacks if s not in wanted]:
            self.fallbacks.pop(server).stop()
        for server, targets in wanted.items():
            fallback = self.fallbacks.get(server)
            if fallback is None:
                fallback = self.fallbacks[server] = FallbackPrecheck(
                    server, self.budget, self._on_change, interval=self.runtime.settings.schema_fallback_interval,
                    known_marker=self._known_marker, connect_timeout=self.runtime.settings.probe_timeout)
                fallback.set_targets(targets)
                fallback.start()
            else:
                fallback.set_targets(targets)

    def _known_marker(self, asset_id: int) -> str | None:
        with self.runtime.store.session() as s:
            return s.scalar(select(SchemaWatchState.marker).where(SchemaWatchState.asset_id == asset_id))

    def _on_change(self, asset_id: int) -> None:
        self.emit("schema.check", {"asset_id": asset_id, "context": {"source": "precheck"}})

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
        fallbacks = list(self.fallbacks.values())
        # Every listener wakes within a second of being asked: ask all first, then wait once,
        # so stopping a thousand takes about as long as stopping one.
        for waiting in (*listeners, *fallbacks):
            waiting.request_stop()
        self.stop_refreshing()
        deadline = time.monotonic() + timeout
        for waiting in (*listeners, *fallbacks):
            waiting.stop(max(0.0, deadline - time.monotonic()))
        self.listeners.clear()
        self.fallbacks.clear()
