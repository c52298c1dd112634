"""Keeping the event trigger trustworthy on every check of an asset allowed one.

An intact trigger is left alone. One that is missing is installed where dbmon is superuser.
One that deviates from what dbmon installed is reinstalled when every `_dbmon` object is still
dbmon's; when one is not, the install is refused and dbmon's event triggers are dropped, since
they would run a function someone else controls on every user's DDL, a superuser's included.
A deviation from an installed trigger is a `schema.trigger_tampered` event; an install refused
because someone else's objects sit in `_dbmon` is `schema.trigger_refused`. Both are critical.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

from monitor_app.access import audit
from monitor_app.platform.event_log import record_event
from monitor_app.schema import event_trigger, trigger_integrity

TAMPERED, REFUSED = "schema.trigger_tampered", "schema.trigger_refused"
# The function bodies of earlier releases: before signed notifications (no key table yet),
# signing every statement before the per-session payload, notifying every autocommitted
# statement before the once-a-second window, the last with two event triggers
# (ddl_command_end and sql_drop, the function pinning its own search_path, no separate sender),
# the last signed one (a deciding function calling a SECURITY DEFINER sender that signed with
# the key table), and the last with a per-session quarter-second window for autocommitted
# statements (a session setting). Finding exactly one of those, and nothing else amiss, is an upgrade to
# do, not a tampering to report.
PREVIOUS_BODY_SHA256 = {"47c391531b0f470a6b5c99760854a030278b8b825f54f6ee4a226985bd79954d",
                        "7796f14bbf08469f2da855ed75d3dcfd4bef220a33f8f607b7c63704ceeda615",
                        "fd836291aabaac3958528decd08690884864ce7ae3cbd5874288cb9e9c680a00",
                        "2fae9316db2738d832cd0f0fd3af3bf13ef3c907ae8d13552a65b1d1107980b1",
                        "e5bd292b167e8c48732f30136f0d7b9e855b3a480e9a917ce4fe8043e6918b7c",
                        "d0e8824e589b9ab8153eee89e905e0d591ec9504ee5c91ac1960ee17dae95b2f"}
PREVIOUS_RELEASE_GAPS = (
    f"function {event_trigger.FUNCTION}() body is not dbmon's",
    f"function {event_trigger.FUNCTION}() is SECURITY DEFINER, not SECURITY INVOKER",
    trigger_integrity.settings_problem(f"{event_trigger.FUNCTION}()", [f"search_path={event_trigger.SEARCH_PATH}"], []),
    trigger_integrity.earlier_release(event_trigger.EARLIER_SENDER, "function"),
    trigger_integrity.earlier_release(event_trigger.EARLIER_KEY_TABLE, "table"),
    *(f"event trigger {name} is missing" for name in event_trigger.TRIGGERS),
    *(trigger_integrity.earlier_release(name) for name in event_trigger.EARLIER_TRIGGERS))


@dataclass
class TriggerReport:
    installed: bool
    action: str                    # verified, installed, repaired, refused, disarmed, not repaired
    event: str | None = None
    problems: list[str] = field(default_factory=list)
    fingerprint: str | None = None


def keep_trigger(conn, was_installed: bool, audit_as: tuple | None = None) -> TriggerReport:
    """`audit_as` = (store, target): an install done on the way is recorded in the audit trail as `system`."""
    with event_trigger.pinned_search_path(conn):
        return _keep_trigger(conn, was_installed, audit_as)


def _audited_install(audit_as: tuple | None):
    if audit_as is None:
        return nullcontext()
    store, target = audit_as
    return audit.recorded(store, actor=audit.SYSTEM, action="schema.trigger.install", target=target,
                          detail={"automatic": True})


def _keep_trigger(conn, was_installed: bool, audit_as: tuple | None) -> TriggerReport:
    state = trigger_integrity.inspect(conn)
    if state.intact:
        return TriggerReport(True, "verified")
    upgrade = state.body_sha256 in PREVIOUS_BODY_SHA256 and set(state.problems) <= set(PREVIOUS_RELEASE_GAPS)
    # Something of ours is there but wrong, or what was installed is gone.
    deviates = not upgrade and ((state.present and bool(state.problems)) or was_installed)
    problems = list(state.problems) or ["the schema event trigger is gone"]
    # A trigger that vanished entirely looks the same every time; only a present one has row versions to key on.
    fingerprint = state.fingerprint if state.present else None
    if not event_trigger.is_superuser(conn):
        if not deviates:
            return TriggerReport(False, "not installed")
        return TriggerReport(False, "not repaired: dbmon's role is not a superuser", TAMPERED,
                             problems, fingerprint)
    try:
        with _audited_install(audit_as):
            event_trigger.install(conn)
    except event_trigger.TriggerError as exc:
        if not exc.permanent:
            raise
        dropped = event_trigger.disarm(conn)
        action = f"disarmed: dropped {', '.join(dropped)}" if dropped else "refused"
        kind = TAMPERED if was_installed or dropped else REFUSED
        # Keyed on what is left, so the next check, finding the same, does not report it again.
        left = trigger_integrity.inspect(conn).fingerprint
        return TriggerReport(False, action, kind, [*state.problems, exc.message], left)
    finally:
        conn.autocommit = True
    if deviates:
        return TriggerReport(True, "repaired", TAMPERED, problems, fingerprint)
    return TriggerReport(True, "upgraded" if upgrade else "installed")


def record_trigger_event(session, asset_id: int, asset_name: str, report: TriggerReport) -> None:
    if report.event is None:
        return
    what = "install refused" if report.event == REFUSED else "tampered with"
    more = f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
    record_event(session, type=report.event, severity="critical", asset_id=asset_id,
                 summary=f"{asset_name}: schema event trigger {what}: {report.problems[0]}{more}; {report.action}",
                 payload={"problems": report.problems, "action": report.action, "installed": report.installed},
                 dedupe_key=f"schema.trigger:{asset_id}:{report.fingerprint}" if report.fingerprint else None)
