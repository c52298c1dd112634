"""The SQLite collector of one asset: the body of the `metrics.sqlite` task, free of Celery.

Every SQLite asset is polled (no configuration needed), each at its own slot in its interval
(`platform.spread`); once a day (`metrics.sqlite_quick_check_interval`) the poll also runs
`quick_check` within `metrics.sqlite_quick_check_seconds`. A poll writes the file's gauges, the
raw write counter and write transactions per second since the last poll (`counter_rates`),
and reports to collector health (`metrics.sqlite.check_failed` / `check_recovered`). A failed
integrity check is a finding about the database, not a collector failure: it is recorded once
as `sqlite.integrity_failed` (critical), and `sqlite.integrity_restored` when a later check
passes.
"""

from __future__ import annotations

from datetime import datetime, timedelta


from monitor_app.errors import DbmonError, NotFound
from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.metrics.sqlite_file import SqliteReading, read_file
from monitor_app.platform.event_log import record_event
from monitor_app.schema.sqlite_snapshot import path_from_dsn
from monitor_app.store.base import iso, utcnow
from monitor_app.store.models import Asset, MetricPollState

POLLS = PollTier("sqlite", "metrics.sqlite")
WRITES = "sqlite.write_transactions"


def _path(connection: dict | None) -> str | None:
    value = (connection or {}).get("path")
    return value if isinstance(value, str) and value else None


def due_assets(rt, now: datetime | None = None) -> list[int]:
    """SQLite assets whose slot has come since they were last sent; they are marked sent."""
    settings, now = rt.config.metrics, now or utcnow()
    with rt.store.session() as s:
        rows = POLLS.candidates(s, Asset.connection, where=(Asset.engine == "sqlite", Asset.kind == "database"))
        return POLLS.mark_due(s, ((asset_id, settings.sqlite_interval_for(name), sent, polled)
                                  for asset_id, name, connection, sent, polled in rows
                                  if _path(connection) and settings.for_asset(name).enabled), now)


def dispatch_due(rt, now: datetime | None = None) -> dict:
    now = now or utcnow()
    due = due_assets(rt, now)
    rt.dispatch_many("metrics.sqlite", [{"asset_id": asset_id} for asset_id in due])
    return {"dispatched": len(due), "asset_ids": due}


def run_poll(rt, asset_id: int, *, now: datetime | None = None) -> dict:
    """Poll one SQLite asset and store what it read; a failure is reported, then raised as permanent."""
    settings, now = rt.config.metrics, now or utcnow()
    with rt.store.session() as s:
        asset = s.get(Asset, asset_id)
        if asset is None or asset.status == "gone" or asset.engine != "sqlite" or not _path(asset.connection):
            raise NotFound(f"asset {asset_id} does not exist, is gone or is not an SQLite file")
        name, path = asset.name, str(path_from_dsn(_path(asset.connection) or ""))
        kept = dict(POLLS.state(s, asset_id).counters or {})
    previous = CounterPoll.from_json(kept.get("poll"))
    checked_at = _parse(kept.get("quick_check_at"))
    check_due = checked_at is None or now - checked_at >= timedelta(seconds=settings.sqlite_quick_check_interval)
    try:
        reading = read_file(path, quick_check=check_due, check_seconds=settings.sqlite_quick_check_seconds,
                            timeout=settings.statement_timeout)
    except DbmonError as exc:
        with rt.store.session() as s:
            POLLS.report(rt, s, asset_id, name, exc.message)
        # Permanent for the task: the next slot is the retry.
        raise DbmonError(exc.message, permanent=True) from None
    return _store(rt, asset_id, name, reading, previous, kept, now)


def _parse(value) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _store(rt, asset_id: int, name: str, reading: SqliteReading, previous: CounterPoll | None,
           kept: dict, now: datetime) -> dict:
    samples = [SeriesSample(asset_id, metric, value, now) for metric, value in reading.gauges.items()]
    counters = {} if reading.write_transactions is None else {"write_transactions": reading.write_transactions}
    current = CounterPoll(now.timestamp(), reading.life, None, counters)
    span, dropped = interval(previous, current)
    if reading.write_transactions is not None:
        samples.append(SeriesSample(asset_id, WRITES, reading.write_transactions, now))
    if span is not None and "write_transactions" in span.deltas:
        samples.append(SeriesSample(asset_id, "sqlite.write_transactions_per_s",
                                    span.deltas["write_transactions"] / span.seconds, now))
    kept = {**kept, "poll": current.as_json()}
    if reading.integrity is not None or reading.problems:
        kept["quick_check_at"] = iso(now)  # an abandoned check waits its interval too: it is costly
    def update(session, state) -> None:
        state.polled_at, state.counters = now, kept
        if reading.integrity is not None:
            _integrity_event(session, asset_id, name, reading.integrity, state, now)

    # An abandoned integrity check is not a failing collector: paging on it daily would teach
    # people to ignore the page. It is a series of its own.
    POLLS.store(rt, asset_id, name, samples, None, update)
    return {"asset_id": asset_id, "samples": len(samples), "journal_mode": reading.journal_mode,
            "rates": dropped or "interval", "integrity": reading.integrity, "problems": reading.problems}


def _integrity_event(session, asset_id: int, name: str, result: str, state: MetricPollState,
                     now: datetime) -> None:
    was_ok = state.counters.get("integrity", "ok") == "ok"
    state.counters = {**state.counters, "integrity": result[:500]}
    if was_ok and result != "ok":
        record_event(session, type="sqlite.integrity_failed", severity="critical", asset_id=asset_id,
                     summary=f"{name}: quick_check found a problem: {result[:200]}",
                     payload={"asset": name, "result": result[:500]}, observed_at=now)
    elif not was_ok and result == "ok":
        record_event(session, type="sqlite.integrity_restored", asset_id=asset_id,
                     summary=f"{name}: quick_check passes again", payload={"asset": name}, observed_at=now)

