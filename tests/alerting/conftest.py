"""Fixtures for alerting: a frozen clock, real HTTP and SMTP peers, an engine factory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.alerting.peers import HttpReceiver, start_smtp


class Clock:
    """Injected time: tests move it forward instead of sleeping."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def webhook_peer():
    peer = HttpReceiver()
    yield peer
    peer.stop()


@pytest.fixture()
def slack_peer():
    peer = HttpReceiver(slack_style=True)
    yield peer
    peer.stop()


@pytest.fixture()
def smtp_peer(tmp_path):
    peer = start_smtp(tmp_path)
    yield peer
    peer.stop()


@pytest.fixture()
def make_engine(store, clock):
    from monitor_app.alerting.config import load_alerting_config
    from monitor_app.alerting.operations import AlertOperations

    def build(config: dict) -> AlertOperations:
        return AlertOperations(store, load_alerting_config(config), "test-secret-key", clock=clock)

    return build
