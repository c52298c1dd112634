"""`dbmon alerts`: list alerts and incidents, acknowledge, resolve, silence, test a channel."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import click
from sqlalchemy import select

from monitor_app.access import audit
from monitor_app.alerting.config import parse_duration
from monitor_app.alerting.service import dispatch_deliveries, alert_operations_for
from monitor_app.alerting.views import alert_dict, incident_dict, silence_dict
from monitor_app.platform.runtime import Runtime
from monitor_app.store.base import utcnow
from monitor_app.store.models.alerting import Alert, Incident, Silence


def _actor() -> str:
    return audit.cli_actor()


def _emit(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        click.echo("  ".join(str(row.get(c, "")) for c in columns))


def _audited(rt: Runtime, action: str, target: str):
    return audit.recorded(rt.store, actor=_actor(), action=action, target=target)


@click.group()
def alerts() -> None:
    """Alerts, incidents and silences."""


@alerts.command("list")
@click.option("--state", type=click.Choice(["pending", "firing", "resolved", "inactive"]), default="firing",
              show_default=True)
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_alerts(state: str, limit: int, as_json: bool) -> None:
    """Alerts in one state, most recently seen first."""
    rt = Runtime()
    with rt.store.session() as s:
        rows = s.scalars(select(Alert).where(Alert.state == state).order_by(Alert.last_seen_at.desc()).limit(limit))
        out = [alert_dict(a) for a in rows]
    for row in out:
        row["asset"] = row["labels"].get("asset", "-")
        row["muted"] = "silenced" if row["silenced"] else ("inhibited" if row["inhibited"] else "")
    _emit(out, as_json, ["id", "severity", "rule", "asset", "incident_id", "starts_at", "muted"])


@alerts.command("incidents")
@click.option("--all", "show_all", is_flag=True, help="include resolved incidents")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_incidents(show_all: bool, limit: int, as_json: bool) -> None:
    """Open and acknowledged incidents (or all with --all)."""
    rt = Runtime()
    query = select(Incident) if show_all else select(Incident).where(Incident.status != "resolved")
    with rt.store.session() as s:
        out = [incident_dict(i) for i in s.scalars(query.order_by(Incident.id.desc()).limit(limit))]
    _emit(out, as_json, ["id", "status", "severity", "title", "opened_at", "acknowledged_by"])


@alerts.command("ack")
@click.argument("incident_id", type=int)
def ack(incident_id: int) -> None:
    """Acknowledge an incident: escalation stops."""
    rt = Runtime()
    with _audited(rt, "incident.acknowledge", f"incident:{incident_id}") as entry:
        result = alert_operations_for(rt).acknowledge(incident_id, _actor())
        entry.detail = result
    click.echo(f"incident {incident_id}: {result['status']}")


@alerts.command("resolve")
@click.argument("incident_id", type=int)
def resolve(incident_id: int) -> None:
    """Resolve an incident by hand; resolved notifications are sent."""
    rt = Runtime()
    with _audited(rt, "incident.resolve", f"incident:{incident_id}") as entry:
        outcome = alert_operations_for(rt).resolve(incident_id, _actor())
        entry.detail = {"alerts_resolved": outcome.resolved}
        dispatch_deliveries(rt, outcome.deliver)
    click.echo(f"incident {incident_id}: resolved ({outcome.resolved} alert(s) cleared)")


@alerts.group("silence")
def silence() -> None:
    """Silences: mute notifications for matching alerts for a while."""


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", default="2h", show_default=True, help="e.g. 30m, 2h, 1d")
@click.option("--comment", default="", help="why; shown with the silence")
def silence_add(matchers: tuple[str, ...], duration: str, comment: str) -> None:
    """Add a silence, e.g. `dbmon alerts silence add asset=orders alertname=~Disk.* --duration 1h`."""
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--duration") from None
    rt = Runtime()
    with _audited(rt, "silence.create", "silence") as entry:
        entry.detail = {"matchers": list(matchers)}
        result = alert_operations_for(rt).add_silence(matchers=list(matchers), ends_at=utcnow() + timedelta(seconds=seconds),
                                            created_by=_actor(), comment=comment)
        entry.target, entry.detail = f"silence:{result['id']}", {"matchers": result["matchers"]}
    click.echo(f"silence {result['id']} until {result['ends_at'].isoformat()}")


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="include expired silences")
@click.option("--json", "as_json", is_flag=True)
def silence_list(show_all: bool, as_json: bool) -> None:
    rt = Runtime()
    now = utcnow()
    query = select(Silence) if show_all else select(Silence).where(Silence.ends_at > now)
    with rt.store.session() as s:
        out = [silence_dict(x, now) for x in s.scalars(query.order_by(Silence.id))]
    for row in out:
        row["matchers"] = ",".join(row["matchers"])
    _emit(out, as_json, ["id", "state", "matchers", "ends_at", "created_by", "comment"])


@silence.command("expire")
@click.argument("silence_id", type=int)
def silence_expire(silence_id: int) -> None:
    """End a silence now."""
    rt = Runtime()
    with _audited(rt, "silence.expire", f"silence:{silence_id}"):
        outcome = alert_operations_for(rt).expire_silence(silence_id)
        dispatch_deliveries(rt, outcome.deliver)
    click.echo(f"silence {silence_id} expired")


@alerts.command("test-send")
@click.argument("channel")
@click.option("--queue", "queued", is_flag=True, help="hand it to the workers instead of sending from here")
def test_send(channel: str, queued: bool) -> None:
    """Send a test notification to a channel and report the outcome (exit 1 if it failed)."""
    rt = Runtime()
    engine = alert_operations_for(rt)
    with _audited(rt, "channel.test", f"channel:{channel}") as entry:
        nid = engine.test_send(channel)
        entry.detail = {"notification_id": nid}
    if queued:
        dispatch_deliveries(rt, [nid])
        click.echo(f"notification {nid} queued")
        return
    result = engine.deliver(nid)
    click.echo(json.dumps({"notification_id": nid, **result}))
    if result["outcome"] != "sent":
        sys.exit(1)


