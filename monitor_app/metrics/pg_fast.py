"""The PostgreSQL fast tier of one asset: the body of the `metrics.pg_fast` task, free of Celery.

Every PostgreSQL asset with credentials is polled (no configuration needed), each at its own
slot in its interval (`platform.spread`). A poll reads through a kept connection
(`kept_connections`), writes gauges, raw counters and the rates of the interval since the last poll
(`counter_rates`: a reset or restart drops the interval), and reports to collector health: a
target that times out, refuses or lacks privileges becomes one `metrics.pg_fast.check_failed`
event, its recovery one `metrics.pg_fast.check_recovered`. A failing poll never raises past the
task boundary into a retry: the next slot is a few seconds away.
"""

from __future__ import annotations

from datetime import datetime

from monitor_app.assets.login_target import login_target
from monitor_app.metrics import pg_polling
from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.pg_fast_queries import read_fast
from monitor_app.metrics.pg_fast_rates import derived
from monitor_app.metrics.pg_reading import PgReading
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.store.base import utcnow

POLLS = PollTier("pg_fast", "metrics.pg_fast")


def due_assets(rt, now: datetime | None = None) -> list[int]:
    """PostgreSQL assets whose slot has come since they were last sent; they are marked sent."""
    return pg_polling.due_assets(rt, POLLS, rt.config.metrics.fast_interval_for, now)


def dispatch_due(rt, now: datetime | None = None) -> dict:
    return pg_polling.dispatch_due(rt, "metrics.pg_fast", POLLS, rt.config.metrics.fast_interval_for, now)


def run_poll(rt, asset_id: int, *, due_at: str | None = None, now: datetime | None = None) -> dict:
    """Poll one asset's fast tier and store what it read; a failure is reported, then raised as permanent."""
    settings = rt.config.metrics
    with rt.store.session() as s:
        _, name, connection, password = login_target(s, asset_id, rt.credentials)
        previous = CounterPoll.from_json(POLLS.state(s, asset_id).counters)
    poll_interval = settings.fast_interval_for(name)
    if pg_polling.stale(due_at, poll_interval, now or utcnow()):
        return {"asset_id": asset_id, "skipped": "a later poll superseded this one"}
    reading = pg_polling.read_target(rt, POLLS, asset_id, name, connection, password, "metrics fast tier",
                                     read_fast, poll_interval)
    return _store(rt, asset_id, name, reading, previous, now or utcnow())


def _store(rt, asset_id: int, name: str, reading: PgReading, previous: CounterPoll | None, now: datetime) -> dict:
    counters = dict(reading.counters)
    if reading.wal_position is not None:
        counters["wal_position"] = reading.wal_position
    current = CounterPoll(now.timestamp(), reading.started, reading.stats_reset, counters)
    span, dropped = interval(previous, current)
    samples = [SeriesSample(asset_id, metric, value, now, labels) for metric, value, labels in reading.gauges]
    samples += [SeriesSample(asset_id, f"pg.{counter}", value, now) for counter, value in reading.counters.items()]
    if span is not None:
        samples += [SeriesSample(asset_id, metric, value, now) for metric, value in derived(span)]

    def update(_session, state) -> None:
        state.polled_at, state.counters = now, current.as_json()

    POLLS.store(rt, asset_id, name, samples, "; ".join(reading.problems) or None, update)
    return {"asset_id": asset_id, "samples": len(samples), "version": reading.version,
            "rates": dropped or "interval", "problems": reading.problems}

