"""What each container task does, as plain functions over a Runtime: reconcile with the engine,
handle one engine event, probe one asset's endpoints. Engine and network calls stay outside
store transactions; the tasks in `workers/tasks/containers.py` only wrap these."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from monitor_app.assets.reachability import can_probe
from monitor_app.containers import inventory
from monitor_app.containers.asset_upsert import SOURCE
from monitor_app.containers.discovery import Outcome, handle_event, reconcile, refresh_asset
from monitor_app.containers.lifecycle import exit_pending
from monitor_app.containers.service_status import apply, probe_endpoints
from monitor_app.errors import DbmonError, NotFound, ProbeError
from monitor_app.platform.collector_health import Attempt, asset_subject, report
from monitor_app.platform.scan_kinds import SCAN_KINDS
from monitor_app.store.models import Asset

log = logging.getLogger("dbmon.containers.runs")
# Scan kinds that take a PostgreSQL asset once credentials are known (registered by those concerns).
# What a newly discovered, loginable container is checked for at once (scan kinds), per engine.
HANDOVER_KINDS = {"postgresql": ("schema", "metrics"), "mysql": ("schema", "mysql-metrics"),
                  "mariadb": ("schema", "mysql-metrics")}


def _client(rt, attempt: Attempt | None = None):
    """A connected client; with `attempt`, whether the engine answered is reported as that
    collector's outcome (a failure streak becomes `<collector>.check_failed`)."""
    try:
        client = inventory.connect(rt.config.containers.docker_url)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - docker raises several unrelated types for "engine away"
        error = ProbeError(f"docker engine unreachable: {exc}")
        if attempt is not None:
            _report(rt, replace(attempt, error=error.message))
        raise error from None
    if attempt is not None:
        _report(rt, attempt)
    return client


def _report(rt, attempt: Attempt) -> None:
    report(rt.store, attempt, rt.settings.collector_failures_before_event)


def _follow_up(rt, out: Outcome) -> None:
    for asset_id in out.probe:
        rt.dispatch("containers.probe", {"asset_id": asset_id})
    if not out.created and not out.revived:
        return
    with rt.store.session() as s:
        rows = s.scalars(select(Asset).where(Asset.source == SOURCE, Asset.name.in_(out.created + out.revived),
                                             Asset.engine.in_(list(HANDOVER_KINDS)))).all()
        # A MySQL login names no database by default: its schema is checked once one is labelled.
        handed = [(a.id, [k for k in HANDOVER_KINDS[a.engine or ""]
                          if k != "schema" or a.engine == "postgresql" or (a.connection or {}).get("database")])
                  for a in rows if (a.details or {}).get("monitoring")]
    for asset_id, kinds in handed:
        for kind in kinds:
            spec = SCAN_KINDS.get(kind)
            if spec is not None and spec.asset != "none":
                rt.dispatch(spec.task, {"asset_id": asset_id}, kind=kind)


def _just_started(record, within: float = 120.0) -> bool:
    if record.status != "running" or not record.started_at:
        return False
    try:
        started = datetime.fromisoformat(record.started_at[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return False
    return (datetime.now(timezone.utc) - started).total_seconds() < within


def _exit_pending(rt, cid: str | None) -> bool:
    """Look again after a failed probe: a container that has just stopped is judged by its die event."""
    client = _client(rt)
    try:
        record = inventory.inspect(client, cid) if cid else None
    finally:
        client.close()
    return exit_pending(record.status if record else None, record.finished_at if record else None,
                        datetime.now(timezone.utc))


def run_reconcile(rt) -> Outcome:
    client = _client(rt, Attempt("containers.discovery", "docker", name="docker engine"))
    try:
        records = inventory.list_all(client)  # engine calls outside the store transaction
        with rt.store.session() as s:
            out = reconcile(s, client, rt.config.containers, rt.credentials, records=records)
    except IntegrityError:
        raise DbmonError("a container was registered concurrently by an event; retrying", permanent=False) from None
    finally:
        client.close()
    _follow_up(rt, out)
    return out


def run_event(rt, event: dict) -> Outcome:
    client = _client(rt)
    try:
        with rt.store.session() as s:
            out = handle_event(s, client, event, rt.config.containers, rt.credentials)
    except IntegrityError:
        # Another task registered the same container or asset at the same moment: run again, it exists now.
        raise DbmonError(f"{event['container_id'][:12]} {event['action']}: registered concurrently; retrying",
                         permanent=False) from None
    finally:
        client.close()
    _follow_up(rt, out)
    return out


def probe_targets(session) -> list[int]:
    return list(session.scalars(select(Asset.id).where(Asset.source == SOURCE, Asset.status != "gone")))


def run_probe(rt, asset_id: int) -> dict:
    cfg = rt.config.containers
    client = _client(rt, Attempt("containers.probe", asset_subject(asset_id), asset_id))
    try:
        with rt.store.session() as s:
            asset = s.get(Asset, asset_id)
            if asset is None:
                raise NotFound(f"asset {asset_id} does not exist")
            if asset.status == "gone":
                return {"asset_id": asset_id, "skipped": "the container is gone"}  # removed since the probe was queued
            record = refresh_asset(s, client, asset, cfg, rt.credentials)
            endpoints, engine = list((asset.details or {}).get("endpoints") or []), asset.engine
            login, cid = can_probe(asset), (asset.details or {}).get("container_id")
    finally:
        client.close()
    if not endpoints:
        if record is not None and record.network_mode != "none" and _just_started(record):
            # Started but not listening yet: the task's retry backoff (2, 4, 8 ... s) waits for it.
            raise ProbeError(f"{record.name} is running but not listening on any port yet")
        return {"asset_id": asset_id, "skipped": "no endpoint reachable from dbmon"}
    result = probe_endpoints(endpoints, engine, cfg.probe_timeout)  # network work outside the transaction
    judge = result.ports[0].up or not _exit_pending(rt, cid)
    with rt.store.session() as s:
        summary = apply(s, s.get(Asset, asset_id), result, thresholds=cfg.tls_warn_days,
                        interval=rt.settings.reachability_interval, judge_status=judge,
                        failures_before_event=rt.settings.collector_failures_before_event)
    if login and judge:
        # Credentials known: the full login check says whether the database itself answers.
        rt.dispatch("assets.check_reachability", {"asset_id": asset_id})
    return summary
