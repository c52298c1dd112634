"""Turn Docker container events into lifecycle findings: planned or not, flapping or not.

Pure: the caller supplies what it remembers about the container (last API stop/kill,
last restart count, recent unplanned exits) and stores what comes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Only these actions matter; exec_* (health checks run as execs), attach, resize ... are noise.
LIFECYCLE_ACTIONS = ("create", "start", "die", "stop", "kill", "restart", "oom", "health_status",
                     "destroy", "rename", "update", "pause", "unpause")
# A die within this long after an API kill/stop/restart is that request's doing.
PLANNED_WINDOW_NANO = 10 * 60 * 10**9


@dataclass
class Finding:
    type: str
    severity: str
    summary: str
    payload: dict = field(default_factory=dict)
    counts_as_unplanned: bool = False


@dataclass
class Memory:
    """What the store remembers about one container between events."""

    name: str
    stop_requested_nano: int | None = None
    restart_count: int = 0
    oom_pending: bool = False


@dataclass(frozen=True)
class FlappingPolicy:
    restarts: int = 3
    minutes: float = 10.0


def split_action(action: str) -> tuple[str, str]:
    """`health_status: unhealthy` -> (`health_status`, `unhealthy`)."""
    base, _, detail = action.partition(":")
    return base.strip(), detail.strip()


def is_planned_die(die_nano: int, memory: Memory, after_stop: bool) -> bool:
    if after_stop:
        return True
    return memory.stop_requested_nano is not None and 0 <= die_nano - memory.stop_requested_nano <= PLANNED_WINDOW_NANO


def classify(action: str, attributes: dict, time_nano: int, memory: Memory, *,
             restart_count: int | None = None, oom_killed: bool = False) -> list[Finding]:
    """Findings for one event. `restart_count` / `oom_killed` come from a fresh inspect when available."""
    base, detail = split_action(action)
    name = attributes.get("name") or memory.name
    found: list[Finding] = []
    if base == "die":
        try:
            exit_code = int(attributes.get("exitCode", ""))
        except ValueError:
            exit_code = None
        planned = is_planned_die(time_nano, memory, bool(attributes.get("dbmon.after_stop")))
        oom = oom_killed or memory.oom_pending
        severity = "info" if planned else ("critical" if oom else "warning")
        why = "after a stop/kill request" if planned else ("killed for running out of memory" if oom else "unplanned")
        found.append(Finding("container.die", severity, f"{name} exited with code {exit_code} ({why})",
                             {"exit_code": exit_code, "planned": planned, "oom_killed": oom},
                             counts_as_unplanned=not planned))
    elif base == "oom":
        found.append(Finding("container.oom", "critical", f"{name} ran out of memory (OOM)", {}))
    elif base == "kill":
        found.append(Finding("container.kill", "info", f"{name} sent signal {attributes.get('signal', '?')}",
                             {"signal": attributes.get("signal")}))
    elif base == "health_status":
        severity = "warning" if detail == "unhealthy" else "info"
        found.append(Finding("container.health_status", severity, f"{name} is {detail or 'unknown'}",
                             {"health": detail}))
    elif base == "start":
        found.append(Finding("container.start", "info", f"{name} started", {}))
        if restart_count is not None and restart_count > memory.restart_count:
            found.append(Finding("container.unplanned_restart", "warning",
                                 f"{name} was restarted by its restart policy (restart count {restart_count})",
                                 {"restart_count": restart_count, "previous": memory.restart_count}))
    elif base in ("create", "stop", "restart", "destroy", "pause", "unpause", "rename", "update"):
        found.append(Finding(f"container.{base}", "info", f"{name}: {base}",
                             {k: v for k, v in attributes.items() if k == "oldName"}))
    return found


def remember(action: str, time_nano: int, memory: Memory, *, restart_count: int | None = None) -> Memory:
    """The memory after the event."""
    base, _ = split_action(action)
    if base in ("kill", "stop", "restart"):
        memory.stop_requested_nano = max(memory.stop_requested_nano or 0, time_nano)
    if base == "oom":
        memory.oom_pending = True
    if base == "die":
        memory.oom_pending = False
    # The engine bumps RestartCount when it decides to restart, before the start: only a start
    # absorbs the growth, so the start is the one reported as the unplanned restart.
    if base == "start" and restart_count is not None:
        memory.restart_count = max(memory.restart_count, restart_count)
    return memory


def flapping(unplanned_nanos: list[int], now_nano: int, policy: FlappingPolicy) -> Finding | None:
    """N unplanned exits within M minutes: one finding per window, keyed by the window's first exit."""
    window = int(policy.minutes * 60 * 10**9)
    recent = sorted(n for n in unplanned_nanos if now_nano - window <= n <= now_nano)
    if len(recent) < policy.restarts:
        return None
    return Finding("container.flapping", "critical",
                   f"{len(recent)} unplanned exits within {policy.minutes:g} minutes",
                   {"exits": len(recent), "window_minutes": policy.minutes, "since_nano": recent[0]})
