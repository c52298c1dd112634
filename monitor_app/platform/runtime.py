"""Everything a process needs, built once from settings and passed in, never connected on import."""

from __future__ import annotations

from functools import cached_property
from typing import Callable

from monitor_app.config.declarative import DbmonConfig
from monitor_app.access.credential_box import CredentialBox
from monitor_app.config.last_good import ConfigUnavailable, LastGoodConfig, report
from monitor_app.platform.task_ledger import LeasePolicy, Ledger, Sender
from monitor_app.config.settings import Settings, get_settings
from monitor_app.store.base import Store


class Runtime:
    def __init__(self, settings: Settings | None = None, *, sender: Sender | None = None):
        self.settings = settings or get_settings()
        self._sender = sender

    @cached_property
    def store(self) -> Store:
        store = Store(self.settings.resolved_database_url)
        from monitor_app.alerting.service import evaluate_after_commit

        store.event_listeners.append(evaluate_after_commit(self))  # new events reach alerting at once
        return store

    @cached_property
    def ledger(self) -> Ledger:
        s = self.settings
        return Ledger(self.store, LeasePolicy(running_lease=s.task_lease_seconds,
                                              queued_grace=s.task_queued_grace))

    @cached_property
    def connection_budget(self):
        """This process's share of every monitored server's connection cap (one holder, one renewer)."""
        from monitor_app.assets.connection_budget import ConnectionBudget

        return ConnectionBudget.from_settings(self.store, self.settings, overrides=self._server_budgets)

    def _server_budgets(self) -> dict[str, int]:
        try:
            return self.config.server_budgets()
        except ConfigUnavailable:
            return {}

    @cached_property
    def recent_logins(self):
        """Logins of this process's reachability probes, each answering for its role's other
        databases on that server for half the probe interval."""
        from monitor_app.assets.recent_logins import RecentLogins

        return RecentLogins(ttl=self.settings.reachability_interval / 2)

    @cached_property
    def pg_sessions(self):
        """Connections to monitored PostgreSQL kept across metric polls, each holding a budget slot."""
        from monitor_app.metrics.kept_connections import KeptConnections, idle_seconds_for
        from monitor_app.metrics.pg_polling import KEEP_POLICY

        return KeptConnections(self.connection_budget, KEEP_POLICY,
                               idle_seconds=idle_seconds_for(self.config.metrics.fast_interval))

    @cached_property
    def mysql_sessions(self):
        """Connections to monitored MySQL and MariaDB servers kept across metric polls, each holding a budget slot."""
        from monitor_app.metrics.kept_connections import KeptConnections
        from monitor_app.metrics.mysql_connection import KEEP_POLICY

        # No idle time of its own: each poll passes its interval's (the server's wait_timeout).
        return KeptConnections(self.connection_budget, KEEP_POLICY)

    @cached_property
    def series_writer(self):
        """One per process: it remembers series ids, so a steady collector resolves each series once."""
        from monitor_app.metrics.sample_store import SeriesWriter

        return SeriesWriter(self.store)

    @cached_property
    def credentials(self) -> CredentialBox:
        return CredentialBox(self.settings.secret_keys())

    @cached_property
    def config_source(self) -> LastGoodConfig:
        return LastGoodConfig(self.settings.config_file, self.settings.data_dir)

    @property
    def config(self) -> DbmonConfig:
        """The config file, re-read when it changes; a file that became invalid keeps the last good one."""
        config, changed = self.config_source.current()
        if changed is not None:
            report(self.store, changed)
        if config is None:
            since = self.config_source.status.invalid_since
            raise ConfigUnavailable(f"the config file is invalid (since {since.isoformat() if since else '?'}) "
                                    "and no good version of it was loaded before")
        return config

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            # Imported late: the domain core must not need Celery to be importable.
            from workers.celery_app import send

            self._sender = send
        return self._sender

    def dispatch(self, task_name: str, kwargs: dict | None = None, *,
                 requested_by: str = "system", kind: str | None = None) -> str:
        """Record the run in the ledger, then publish it. If publishing fails, the sweep re-sends it."""
        from monitor_app.platform.task_queues import queue_for

        kwargs = kwargs or {}
        queue = queue_for(task_name)
        run_id = self.ledger.record(task_name, kwargs, queue=queue, requested_by=requested_by, kind=kind)
        try:
            self.sender(task_name, kwargs, run_id, queue)
        except Exception:  # noqa: BLE001 - the row is the promise; redelivery covers a down broker
            pass
        return run_id

    def dispatch_many(self, task_name: str, kwargs_list: list[dict], *, requested_by: str = "system") -> list[str]:
        """`dispatch` for a fan-out: one ledger transaction for all its runs instead of one each.
        When a publish fails the rest are not tried (the broker is down, and each try would wait
        for it): their rows stay queued and the redelivery sweep sends them."""
        from monitor_app.platform.task_queues import queue_for

        queue = queue_for(task_name)
        run_ids = self.ledger.record_many(task_name, kwargs_list, queue=queue, requested_by=requested_by)
        for kwargs, run_id in zip(kwargs_list, run_ids, strict=True):
            try:
                self.sender(task_name, kwargs, run_id, queue)
            except Exception:  # noqa: BLE001 - the rows are the promise; redelivery covers a down broker
                break
        return run_ids

    def on_new_events(self, listener: Callable[[list[int]], None]) -> None:
        self.store.event_listeners.append(listener)

    def close(self) -> None:
        if "pg_sessions" in self.__dict__:
            self.pg_sessions.close()
        if "mysql_sessions" in self.__dict__:
            self.mysql_sessions.close()
        if "connection_budget" in self.__dict__:
            self.connection_budget.close()
        if "store" in self.__dict__:
            self.store.dispose()
