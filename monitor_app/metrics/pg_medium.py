"""The PostgreSQL medium tier of one asset: the body of the `metrics.pg_medium` task, free of Celery.

Every PostgreSQL asset with credentials is polled each `medium_interval` (60 s by default) at its
own slot, through the same kept connection as the fast tier (`pg_polling`). A poll stores the
statements that took the most time in the interval (`pg_medium_rates.top_statements`), the
checkpointer's, background writer's and archiver's counters raw and as rates (each source drops
only its own interval after its own reset), and the vacuums running now. Failures are reported
as `metrics.pg_medium.check_failed` / `check_recovered`; a missing `pg_stat_statements` is not a
failure (`pg.statements_available` reads 0).
"""

from __future__ import annotations

from datetime import datetime

from monitor_app.assets.login_target import login_target
from monitor_app.metrics import pg_polling
from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.pg_medium_queries import MediumReading, read_medium
from monitor_app.metrics.pg_medium_rates import source_rates, top_statements
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.store.base import utcnow

POLLS = PollTier("pg_medium", "metrics.pg_medium")


def due_assets(rt, now: datetime | None = None) -> list[int]:
    return pg_polling.due_assets(rt, POLLS, rt.config.metrics.medium_interval_for, now)


def dispatch_due(rt, now: datetime | None = None) -> dict:
    return pg_polling.dispatch_due(rt, "metrics.pg_medium", POLLS, rt.config.metrics.medium_interval_for, now)


def run_poll(rt, asset_id: int, *, due_at: str | None = None, now: datetime | None = None) -> dict:
    """Poll one asset's medium tier and store what it read; a failure is reported, then raised as permanent."""
    settings = rt.config.metrics
    with rt.store.session() as s:
        _, name, connection, password = login_target(s, asset_id, rt.credentials)
        previous = dict(POLLS.state(s, asset_id).counters or {})
    poll_interval = settings.medium_interval_for(name)
    if pg_polling.stale(due_at, poll_interval, now or utcnow()):
        return {"asset_id": asset_id, "skipped": "a later poll superseded this one"}
    reading = pg_polling.read_target(rt, POLLS, asset_id, name, connection, password, "metrics medium tier",
                                     lambda conn: read_medium(conn, settings.statements_tracked), poll_interval)
    return _store(rt, asset_id, name, reading, previous, now or utcnow())


def _store(rt, asset_id: int, name: str, reading: MediumReading, previous: dict, now: datetime) -> dict:
    at = now.timestamp()
    samples = [SeriesSample(asset_id, metric, value, now, labels) for metric, value, labels in reading.gauges]
    lives: dict[str, dict] = {}
    dropped: dict[str, str | None] = {}
    stored_lives = previous.get("lives")
    earlier_lives: dict = stored_lives if isinstance(stored_lives, dict) else {}
    for source, (reset, counters) in reading.lives.items():
        current = CounterPoll(at, reading.started, reset, counters)
        lives[source] = current.as_json()
        samples += [SeriesSample(asset_id, f"pg.{source}.{counter}", value, now) for counter, value in counters.items()]
        span, why = interval(CounterPoll.from_json(earlier_lives.get(source)), current)
        if span is None:
            dropped[source] = why
            continue
        samples += [SeriesSample(asset_id, metric, value, now) for metric, value in source_rates(source, span)]
    state: dict[str, dict] = {"lives": lives}
    ranked = []
    if reading.statements is not None:
        state["statements"] = {"at": at, "started": reading.started, "reset": reading.statements_reset,
                               "complete": reading.statements_complete,
                               "numbers": {qid: list(numbers) for qid, (_, numbers) in reading.statements.items()}}
        earlier = _earlier_statements(previous.get("statements"), reading, at)
        if earlier is not None:
            seconds, numbers, complete = earlier
            ranked = top_statements(numbers, reading.statements, seconds, rt.config.metrics.statements_top,
                                    previous_complete=complete)
            for statement in ranked:
                samples += [SeriesSample(asset_id, metric, value, now, statement.labels)
                            for metric, value in statement.series()]

    def update(_session, poll_state) -> None:
        poll_state.polled_at, poll_state.counters = now, state

    POLLS.store(rt, asset_id, name, samples, "; ".join(reading.problems) or None, update)
    return {"asset_id": asset_id, "samples": len(samples), "version": reading.version, "dropped": dropped,
            "statements_ranked": [s.queryid for s in ranked], "problems": reading.problems}


def _earlier_statements(stored, reading: MediumReading, at: float) -> tuple[float, dict[str, list[float]], bool] | None:
    """(seconds since, numbers, whether they were all of them) of the last poll's statements, if
    they are of the same life."""
    if not isinstance(stored, dict) or not isinstance(stored.get("numbers"), dict):
        return None
    try:
        seconds = at - float(stored["at"])
    except (KeyError, TypeError, ValueError):
        return None
    if seconds <= 0 or stored.get("started") != reading.started or stored.get("reset") != reading.statements_reset:
        return None
    numbers = {}
    for qid, values in stored["numbers"].items():
        if isinstance(values, list) and all(isinstance(v, (int, float)) for v in values):
            numbers[str(qid)] = [float(v) for v in values]
    return seconds, numbers, stored.get("complete") is True
