"""Turn Docker container events into lifecycle findings: planned or not, flapping or not.

Pure: the caller supplies what it remembers about the container (last API stop/kill,
last restart count, recent unplanned exits) and stores what comes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Only these actions matter; exec_* (health checks run as execs), attach, resize ... are noise.
LIFECYCLE_ACTIONS = ("create", "start", "die", "stop", "kill", "restart", "oom", "health_status",
                     "destroy", "rename", "update", "pause", "unpause")
# A die within this long after an API kill/stop/restart is that request's doing.
PLANNED_WINDOW_NANO = 10 * 60 * 10**9
# A container that stopped running this recently has its `die` event on the way (the watcher hands
# it on in milliseconds), and only that event knows whether the stop was asked for.
DIE_EVENT_GRACE = timedelta(seconds=15)
# A requested stop ends cleanly: exit 0, or 128 + SIGTERM when the process keeps the default action.
CLEAN_EXIT_CODES = (0, 143)


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


def is_planned_die(die_nano: int, memory: Memory, after_stop: bool, exit_code: int | None,
                   graceful: bool = False) -> bool:
    """Planned: a stop/kill/restart was requested and the process exited cleanly. A `docker kill`
    (SIGKILL, exit 137) is not a clean exit; a `docker stop` whose SIGTERM timed out into a SIGKILL
    is, when the follower saw the SIGTERM (`graceful`)."""
    requested = after_stop or (memory.stop_requested_nano is not None
                               and 0 <= die_nano - memory.stop_requested_nano <= PLANNED_WINDOW_NANO)
    return requested and (graceful or exit_code in CLEAN_EXIT_CODES)


def exit_pending(status: str | None, finished_at: str | None, now: datetime) -> bool:
    """The container just stopped (or vanished): a failing probe leaves the up/down verdict to its
    die (or destroy) event, so a planned stop is not reported down first. Without a watcher the
    next probe, past the grace, decides."""
    if status is None:
        return True
    if status in ("running", "paused", "created") or not finished_at:
        return False
    try:
        finished = datetime.fromisoformat(finished_at[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return False
    return now - finished < DIE_EVENT_GRACE


@dataclass(frozen=True)
class _Event:
    """One event as a classifier sees it; restart_count / oom_killed come from a fresh inspect when available."""

    name: str
    detail: str
    attributes: dict
    time_nano: int
    memory: Memory
    restart_count: int | None
    oom_killed: bool


def classify(action: str, attributes: dict, time_nano: int, memory: Memory, *,
             restart_count: int | None = None, oom_killed: bool = False) -> list[Finding]:
    """Findings for one event. `restart_count` / `oom_killed` come from a fresh inspect when available."""
    base, detail = split_action(action)
    classifier = _CLASSIFIERS.get(base)
    if classifier is None:
        return []
    return classifier(_Event(attributes.get("name") or memory.name, detail, attributes, time_nano, memory,
                             restart_count, oom_killed))


def _died(ev: _Event) -> list[Finding]:
    try:
        exit_code = int(ev.attributes.get("exitCode", ""))
    except ValueError:
        exit_code = None
    oom = ev.oom_killed or ev.memory.oom_pending
    planned = not oom and is_planned_die(ev.time_nano, ev.memory, bool(ev.attributes.get("dbmon.after_stop")),
                                         exit_code, bool(ev.attributes.get("dbmon.graceful_stop")))
    severity = "info" if planned else ("critical" if oom else "warning")
    why = "after a stop request" if planned else ("killed for running out of memory" if oom else "unplanned")
    return [Finding("container.die", severity, f"{ev.name} exited with code {exit_code} ({why})",
                    {"exit_code": exit_code, "planned": planned, "oom_killed": oom}, counts_as_unplanned=not planned)]


def _out_of_memory(ev: _Event) -> list[Finding]:
    return [Finding("container.oom", "critical", f"{ev.name} ran out of memory (OOM)", {})]


def _killed(ev: _Event) -> list[Finding]:
    return [Finding("container.kill", "info", f"{ev.name} sent signal {ev.attributes.get('signal', '?')}",
                    {"signal": ev.attributes.get("signal")})]


def _health_changed(ev: _Event) -> list[Finding]:
    severity = "warning" if ev.detail == "unhealthy" else "info"
    return [Finding("container.health_status", severity, f"{ev.name} is {ev.detail or 'unknown'}",
                    {"health": ev.detail})]


def _started(ev: _Event) -> list[Finding]:
    found = [Finding("container.start", "info", f"{ev.name} started", {})]
    if ev.restart_count is not None and ev.restart_count > ev.memory.restart_count:
        found.append(Finding("container.unplanned_restart", "warning",
                             f"{ev.name} was restarted by its restart policy (restart count {ev.restart_count})",
                             {"restart_count": ev.restart_count, "previous": ev.memory.restart_count}))
    return found


def _plain(base: str):
    def finding(ev: _Event) -> list[Finding]:
        return [Finding(f"container.{base}", "info", f"{ev.name}: {base}",
                        {k: v for k, v in ev.attributes.items() if k == "oldName"})]
    return finding


# One classifier per event kind; kinds not listed here produce no finding.
_CLASSIFIERS = {
    "die": _died, "oom": _out_of_memory, "kill": _killed, "health_status": _health_changed, "start": _started,
    **{base: _plain(base) for base in ("create", "stop", "restart", "destroy", "pause", "unpause", "rename",
                                       "update")},
}


def remember(action: str, time_nano: int, memory: Memory, *, restart_count: int | None = None) -> Memory:
    """The memory after the event: one transition per event kind, the others leave it as it was."""
    base, _ = split_action(action)
    transition = _MEMORY_TRANSITIONS.get(base)
    if transition is not None:
        transition(memory, time_nano, restart_count)
    return memory


def _stop_requested(memory: Memory, time_nano: int, restart_count: int | None) -> None:
    memory.stop_requested_nano = max(memory.stop_requested_nano or 0, time_nano)


def _oom_seen(memory: Memory, time_nano: int, restart_count: int | None) -> None:
    memory.oom_pending = True


def _exited(memory: Memory, time_nano: int, restart_count: int | None) -> None:
    memory.oom_pending = False


def _start_absorbs_restart(memory: Memory, time_nano: int, restart_count: int | None) -> None:
    # The engine bumps RestartCount when it decides to restart, before the start: only a start
    # absorbs the growth, so the start is the one reported as the unplanned restart.
    if restart_count is not None:
        memory.restart_count = max(memory.restart_count, restart_count)


_MEMORY_TRANSITIONS = {"kill": _stop_requested, "stop": _stop_requested, "restart": _stop_requested,
                       "oom": _oom_seen, "die": _exited, "start": _start_absorbs_restart}


def flapping(unplanned_nanos: list[int], now_nano: int, policy: FlappingPolicy) -> Finding | None:
    """N unplanned exits within M minutes: one finding per window, keyed by the window's first exit."""
    window = int(policy.minutes * 60 * 10**9)
    recent = sorted(n for n in unplanned_nanos if now_nano - window <= n <= now_nano)
    if len(recent) < policy.restarts:
        return None
    return Finding("container.flapping", "critical",
                   f"{len(recent)} unplanned exits within {policy.minutes:g} minutes",
                   {"exits": len(recent), "window_minutes": policy.minutes, "since_nano": recent[0]})
