"""The two ways the store learns about containers: one engine event, or a full reconcile.

Both are idempotent. Lifecycle events carry a dedupe key built from the engine's
`timeNano`, so an event seen live, replayed from the cursor after a reconnect and
then covered again by a reconcile is stored once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.assets import lifecycle as asset_lifecycle
from monitor_app.containers import asset_upsert, inventory, label_credentials, lifecycle
from monitor_app.containers.config import ContainersConfig
from monitor_app.containers.identify import identify
from monitor_app.containers.inventory import ContainerRecord
from monitor_app.errors import ConfigError
from monitor_app.platform.event_log import record_event
from monitor_app.store.models import Asset, Event
from monitor_app.store.models.containers import ContainerState

log = logging.getLogger("dbmon.containers")


@dataclass
class Outcome:
    """What happened, for the task result; `probe` lists assets worth probing now."""

    seen: int = 0
    databases: int = 0
    created: list[str] = field(default_factory=list)
    revived: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    events: int = 0
    probe: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def nano_to_datetime(nano: int) -> datetime:
    return datetime.fromtimestamp(nano / 1e9, tz=timezone.utc)


def _register(session: Session, record: ContainerRecord, config: ContainersConfig, box, out: Outcome):
    ident = identify(record)
    credential = None
    try:
        credential = label_credentials.resolve(record, ident, config.credentials, config.label_credentials)
    except ConfigError as exc:
        out.errors.append(str(exc))
    result = asset_upsert.upsert(session, record, ident, box=box, credential=credential)
    if ident.is_database:
        out.databases += 1
    if result.created:
        out.created.append(record.name)
    if result.revived:
        out.revived.append(record.name)
    if result.changed:
        out.changed.append(record.name)
    if result.asset is not None and (result.created or result.revived or result.changed):
        out.probe.append(result.asset.id)
    return result


def _store_findings(session: Session, state: ContainerState, findings, time_nano: int, action: str,
                    policy: lifecycle.FlappingPolicy, out: Outcome) -> None:
    if state.asset_id is None:
        return  # lifecycle of non-database containers is not recorded
    observed = nano_to_datetime(time_nano)
    for f in findings:
        key = f"docker:{state.container_id[:12]}:{time_nano}:{f.type}"
        if f.type == "container.unplanned_restart":  # the same key reconcile uses for this restart
            key = f"docker:{state.container_id[:12]}:restart_count:{f.payload['restart_count']}"
        stored = record_event(session, type=f.type, severity=f.severity, asset_id=state.asset_id, summary=f.summary,
                              payload={"container_id": state.container_id, "action": action, **f.payload},
                              observed_at=observed, dedupe_key=key)
        out.events += stored is not None
        if stored is not None and f.counts_as_unplanned:
            _check_flapping(session, state, time_nano, policy, out)


def _check_flapping(session: Session, state: ContainerState, now_nano: int, policy: lifecycle.FlappingPolicy,
                    out: Outcome) -> None:
    since = nano_to_datetime(now_nano) - timedelta(minutes=policy.minutes)
    # Unplanned exits are the container.die events above info severity.
    times = session.scalars(select(Event.observed_at).where(
        Event.asset_id == state.asset_id, Event.type == "container.die", Event.severity != "info",
        Event.observed_at >= since)).all()
    nanos = [int(t.timestamp() * 1e9) for t in times]
    finding = lifecycle.flapping(nanos, now_nano, policy)
    if finding is None:
        return
    bucket = finding.payload["since_nano"] // int(policy.minutes * 60 * 10**9)
    stored = record_event(session, type=finding.type, severity=finding.severity, asset_id=state.asset_id,
                          summary=f"{state.name}: {finding.summary}",
                          payload={"container_id": state.container_id, **finding.payload},
                          observed_at=nano_to_datetime(now_nano), dedupe_key=f"docker:flapping:{state.name}:{bucket}")
    out.events += stored is not None


def _asset_status(session: Session, state: ContainerState, base: str, findings: list[lifecycle.Finding],
                  record: ContainerRecord | None, time_nano: int) -> None:
    """The container's exit or start as its asset's lifecycle: stopped on request, down on a crash
    or OOM kill (at once, before any probe); running again is up when no port can tell (else the
    probe that follows the start decides)."""
    asset = session.get(Asset, state.asset_id) if state.asset_id else None
    # A recreated container may own the asset under the same name now: its state is not ours to set.
    if asset is None or (asset.details or {}).get("container_id") != state.container_id:
        return
    die = next((f for f in findings if f.type == "container.die"), None)
    payload = {"container_id": state.container_id, **(die.payload if die else {})}
    key = f"docker:{state.container_id[:12]}:{time_nano}"
    if die is not None and die.payload["planned"]:
        asset_lifecycle.stop(session, asset, f"{state.name} was stopped on request "
                                             f"(exit code {die.payload['exit_code']})",
                             payload=payload, dedupe_key=f"{key}:asset.stopped", observed_at=nano_to_datetime(time_nano))
    elif die is not None:
        asset_lifecycle.fail(session, asset, f"{state.name} is down: {die.summary}", payload=payload,
                             dedupe_key=f"{key}:asset.down", observed_at=nano_to_datetime(time_nano))
    elif base == "start" and asset.status in ("down", "stopped") and record is not None \
            and record.status == "running" and not (asset.details or {}).get("endpoints"):
        asset_lifecycle.observe(session, asset, True, f"{state.name} is running (no endpoint dbmon can probe)",
                                payload=payload)


def handle_event(session: Session, client, event: dict, config: ContainersConfig, box=None) -> Outcome:
    """One engine event: refresh the container from a fresh inspect, then classify and store the event.

    `event` holds `container_id`, `action`, `time_nano` and `attributes` (name, image, exitCode,
    signal, and the follower's `dbmon.after_stop` / `dbmon.after_oom` annotations).
    """
    out = Outcome(seen=1)
    cid, action, time_nano = event["container_id"], event["action"], int(event["time_nano"])
    attributes = dict(event.get("attributes") or {})
    base, _ = lifecycle.split_action(action)
    record = None if base == "destroy" else inventory.inspect(client, cid)
    state = session.scalar(select(ContainerState).where(ContainerState.container_id == cid))
    if record is None and state is None and attributes.get("image"):
        # Gone before its first event was handled (a short-lived or crash-looping container):
        # the event's own attributes (image, name, dbmon.* labels) still tell whether it was a database.
        ghost = ContainerRecord(id=cid, name=attributes.get("name") or cid[:12], image=attributes["image"],
                                labels={k: v for k, v in attributes.items() if k.startswith("dbmon.")
                                        and not k.startswith("dbmon.after_")}, status="removed")
        state = _register(session, ghost, config, box, out).state
    if record is not None:
        previous_restarts = state.restart_count if state is not None else record.restart_count
        state = _register(session, record, config, box, out).state
    else:
        previous_restarts = state.restart_count if state is not None else 0
    if state is None:
        return out
    memory = lifecycle.Memory(name=state.name, stop_requested_nano=state.stop_requested_nano,
                              restart_count=previous_restarts)
    restart_count = record.restart_count if record else None
    oom_killed = bool(record and record.oom_killed) or bool(attributes.get("dbmon.after_oom"))
    findings = lifecycle.classify(action, attributes, time_nano, memory, restart_count=restart_count,
                                  oom_killed=oom_killed)
    _store_findings(session, state, findings, time_nano, action,
                    lifecycle.FlappingPolicy(config.flapping.restarts, config.flapping.minutes), out)
    _asset_status(session, state, base, findings, record, time_nano)
    lifecycle.remember(action, time_nano, memory, restart_count=restart_count)
    state.stop_requested_nano, state.restart_count = memory.stop_requested_nano, memory.restart_count
    state.last_event_nano = max(state.last_event_nano or 0, time_nano)
    if record is None:
        asset = asset_upsert.mark_gone(session, cid)
        if asset is not None:
            out.gone.append(asset.name)
    elif state.asset_id and base in ("start", "die", "health_status", "restart", "unpause") \
            and state.asset_id not in out.probe:
        out.probe.append(state.asset_id)
    session.flush()
    return out


def reconcile(session: Session, client, config: ContainersConfig, box=None, *,
              records: list[ContainerRecord] | None = None) -> Outcome:
    """List and inspect everything; register what is new, update what changed, mark what vanished.

    Covers whatever the event stream missed (the engine keeps only its last 256 events):
    restart-policy restarts show up as a grown RestartCount, removals as absence.
    """
    out = Outcome()
    records = inventory.list_all(client) if records is None else records
    present = set()
    known = {s.container_id: s for s in session.scalars(select(ContainerState))}
    for record in records:
        present.add(record.id)
        out.seen += 1
        state = known.get(record.id)
        previous_restarts = state.restart_count if state is not None else record.restart_count
        state = _register(session, record, config, box, out).state
        if state.asset_id and record.restart_count > previous_restarts:
            # Restarts the stream did not deliver: recorded once per restart count reached.
            key = f"docker:{record.short_id}:restart_count:{record.restart_count}"
            stored = record_event(session, type="container.unplanned_restart", severity="warning",
                                  asset_id=state.asset_id,
                                  summary=f"{record.name} was restarted by its restart policy "
                                          f"(restart count {record.restart_count}, seen by reconcile)",
                                  payload={"container_id": record.id, "restart_count": record.restart_count,
                                           "previous": previous_restarts}, dedupe_key=key)
            out.events += stored is not None
        state.restart_count = max(state.restart_count or 0, record.restart_count)
    for cid, state in known.items():
        if cid not in present and state.status != "gone":
            asset = asset_upsert.mark_gone(session, cid)
            if asset is not None:
                out.gone.append(asset.name)
    session.flush()
    return out


def refresh_asset(session: Session, client, asset: Asset, config: ContainersConfig, box=None) -> ContainerRecord | None:
    """Re-inspect the container behind an asset (its ports may have opened since the last event)."""
    cid = (asset.details or {}).get("container_id")
    record = inventory.inspect(client, cid) if cid else None
    if record is not None:
        _register(session, record, config, box, Outcome())
    return record

