"""Docker stats of one database container: the body of the `metrics.container` task, free of Celery.

Every asset dbmon registered from a Docker container is polled (no configuration needed), each
at its own slot in `metrics.container_interval`. A stopped container is skipped, not a failure;
an engine that does not answer or a container it no longer knows is reported to collector
health (`metrics.container.check_failed` / `check_recovered`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from monitor_app.errors import DbmonError, NotFound
from monitor_app.metrics.container_stats import ContainerReading, rates, read_container
from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.platform import spread
from monitor_app.platform.collector_health import Attempt, asset_subject, record_attempt
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, MetricPollState

TIER = "container"
COLLECTOR = "metrics.container"
SOURCE = "docker"


def _state(session, asset_id: int) -> MetricPollState:
    state = session.get(MetricPollState, (asset_id, TIER))
    if state is None:
        state = MetricPollState(asset_id=asset_id, tier=TIER, counters={})
        session.add(state)
    return state


def _container_id(details: dict | None) -> str | None:
    value = (details or {}).get("container_id")
    return value if isinstance(value, str) and value else None


def due_assets(rt, now: datetime | None = None) -> list[int]:
    """Container assets whose slot has come since they were last sent; they are marked sent."""
    settings, now = rt.config.metrics, now or utcnow()
    with rt.store.session() as s:
        rows = s.execute(
            select(Asset.id, Asset.name, Asset.details, MetricPollState.dispatched_at, MetricPollState.polled_at)
            .outerjoin(MetricPollState, (MetricPollState.asset_id == Asset.id) & (MetricPollState.tier == TIER))
            .where(Asset.source == SOURCE, (Asset.status.is_(None)) | (Asset.status != "gone"))
            .order_by(Asset.id)).all()
        due = [asset_id for asset_id, name, details, sent, polled in rows
               if _container_id(details) and settings.for_asset(name).enabled
               and spread.is_due(asset_id, settings.container_interval, _latest(sent, polled), now)]
        for asset_id in due:
            _state(s, asset_id).dispatched_at = now
    return due


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def dispatch_due(rt, now: datetime | None = None) -> dict:
    now = now or utcnow()
    due = due_assets(rt, now)
    rt.dispatch_many("metrics.container", [{"asset_id": asset_id} for asset_id in due])
    return {"dispatched": len(due), "asset_ids": due}


def run_poll(rt, asset_id: int, connect, *, now: datetime | None = None) -> dict:
    """Read one container's stats through `connect()` (a docker-py client) and store them."""
    import docker
    import requests

    now = now or utcnow()
    with rt.store.session() as s:
        asset = s.get(Asset, asset_id)
        container_id = _container_id(asset.details) if asset is not None else None
        if asset is None or asset.status == "gone" or asset.source != SOURCE or container_id is None:
            raise NotFound(f"asset {asset_id} does not exist, is gone or is not a container")
        name = asset.name
        previous = CounterPoll.from_json(_state(s, asset_id).counters)
    client = None
    try:
        client = connect()
        reading = read_container(client.api, container_id)
    except (DbmonError, docker.errors.DockerException, requests.RequestException, OSError) as exc:
        error = exc.message if isinstance(exc, DbmonError) else f"docker engine: {str(exc).strip()[:400]}"
        with rt.store.session() as s:
            _report(rt, s, asset_id, name, error)
        raise DbmonError(error, permanent=True) from None
    finally:
        if client is not None:
            client.close()
    return _store(rt, asset_id, name, reading, previous, now)


def _store(rt, asset_id: int, name: str, reading: ContainerReading, previous: CounterPoll | None,
           now: datetime) -> dict:
    samples = [SeriesSample(asset_id, metric, value, now) for metric, value in reading.gauges.items()]
    current = CounterPoll(now.timestamp(), reading.started, None, reading.counters) if reading.running else None
    dropped: str | None = "not running"
    if current is not None:
        span, dropped = interval(previous, current)
        if span is not None:
            found = rates(span.deltas, span.seconds, reading.gauges.get("container.online_cpus"))
            samples += [SeriesSample(asset_id, metric, value, now) for metric, value in found.items()]
    try:
        with rt.store.session() as s:
            rt.series_writer.write_in(s, samples)
            state = _state(s, asset_id)
            state.polled_at = now
            state.counters = current.as_json() if current is not None else {}
            _report(rt, s, asset_id, name, None)
    except Exception:
        rt.series_writer.forget()
        raise
    return {"asset_id": asset_id, "samples": len(samples), "running": reading.running,
            "rates": dropped or "interval"}


def _report(rt, session, asset_id: int, name: str, error: str | None) -> None:
    record_attempt(session, Attempt(COLLECTOR, asset_subject(asset_id), asset_id, name, error),
                   failures_before_event=rt.settings.collector_failures_before_event)
