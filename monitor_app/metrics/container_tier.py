"""Docker stats of one database container: the body of the `metrics.container` task, free of Celery.

Every asset dbmon registered from a Docker container is polled (no configuration needed), each
at its own slot in `metrics.container_interval`. A stopped container is skipped, not a failure;
an engine that does not answer or a container it no longer knows is reported to collector
health (`metrics.container.check_failed` / `check_recovered`).
"""

from __future__ import annotations

from datetime import datetime

from monitor_app.errors import DbmonError, NotFound
from monitor_app.metrics.container_stats import ContainerReading, rates, read_container
from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.poll_tier import PollTier
from monitor_app.metrics.sample_store import SeriesSample
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset

POLLS = PollTier("container", "metrics.container")
SOURCE = "docker"


def _container_id(details: dict | None) -> str | None:
    value = (details or {}).get("container_id")
    return value if isinstance(value, str) and value else None


def due_assets(rt, now: datetime | None = None) -> list[int]:
    """Container assets whose slot has come since they were last sent; they are marked sent."""
    settings, now = rt.config.metrics, now or utcnow()
    with rt.store.session() as s:
        rows = POLLS.candidates(s, Asset.details, where=(Asset.source == SOURCE,))
        return POLLS.mark_due(s, ((asset_id, settings.container_interval, sent, polled)
                                  for asset_id, name, details, sent, polled in rows
                                  if _container_id(details) and settings.for_asset(name).enabled), now)


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
        previous = CounterPoll.from_json(POLLS.state(s, asset_id).counters)
    client = None
    try:
        client = connect()
        reading = read_container(client.api, container_id)
    except (DbmonError, docker.errors.DockerException, requests.RequestException, OSError) as exc:
        error = exc.message if isinstance(exc, DbmonError) else f"docker engine: {str(exc).strip()[:400]}"
        with rt.store.session() as s:
            POLLS.report(rt, s, asset_id, name, error)
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

    def update(_session, state) -> None:
        state.polled_at = now
        state.counters = current.as_json() if current is not None else {}

    POLLS.store(rt, asset_id, name, samples, None, update)
    return {"asset_id": asset_id, "samples": len(samples), "running": reading.running,
            "rates": dropped or "interval"}

