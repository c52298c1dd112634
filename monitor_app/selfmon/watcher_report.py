"""The watcher's heartbeat: its own row and, while it leads, one row per watch source it runs.

Called from the watcher's main loop on every pass (about once a second); writes once per
interval. A standby writes its own row (`leading: false`) and no source rows. The leader's row
lists the sources it started, so a reader knows which sources should be up. While it leads and
beat is dead, it also sends the self-check beat no longer schedules (check.py).
"""

from __future__ import annotations

import logging
import time

from monitor_app.platform.runtime import Runtime
from monitor_app.selfmon.check import BEAT_ALIVE, BEAT_DEAD, CHECK_TASK, beat_stand_in
from monitor_app.selfmon.reporters import HeartbeatWriter, this_host
from monitor_app.store.base import utcnow

log = logging.getLogger("dbmon.selfmon")


def _source_alive(source) -> bool:
    alive = getattr(source, "is_alive", None)
    if alive is None:
        return True  # a source without the probe is taken at its word: it started
    try:
        return bool(alive())
    except Exception:  # noqa: BLE001 - a probe that raises says enough
        return False


class WatcherReporter:
    def __init__(self, runtime: Runtime, *, period: float = 1.0, clock=time.monotonic):
        """`period`: how often the watcher's loop calls `report`, a floor for the row's interval."""
        self.runtime = runtime
        settings = runtime.settings
        self.writer = HeartbeatWriter(lambda: runtime.store, "watcher", f"watcher@{this_host()}",
                                      max(settings.selfmon_heartbeat_interval, period), clock=clock)
        self.check_interval = settings.selfmon_check_interval
        self._clock = clock
        self._next_stand_in = clock() + self.check_interval
        self._standing_in = False

    def report(self, watcher) -> None:
        """`watcher` is a workers.watcher.Watcher: `leading`, `sources`, `lease`, `emit`. Never raises."""
        if not self.writer.due():
            return
        leading = watcher.leading.is_set()
        sources = dict(watcher.sources) if leading else {}
        extra = [self.writer.heartbeat(kind="watch_source", instance=f"{self.writer.instance}/{kind}",
                                       detail={"source": kind, "alive": _source_alive(source)})
                 for kind, source in sources.items()]
        self.writer.write(detail={"leading": leading, "holder": getattr(watcher.lease, "holder", None),
                                  "sources": sorted(sources)}, extra=extra)
        if leading and self._clock() >= self._next_stand_in:
            self._next_stand_in = self._clock() + self.check_interval
            self._stand_in_for_beat(watcher.emit)

    def _stand_in_for_beat(self, emit) -> None:
        try:
            with self.runtime.store.session() as s:
                verdict = beat_stand_in(s, utcnow())
            if verdict == BEAT_DEAD:
                emit(CHECK_TASK, {})
        except Exception:  # noqa: BLE001 - the next pass tries again
            log.warning("watcher: could not judge beat's heartbeat", exc_info=True)
            return
        standing_in = verdict != BEAT_ALIVE
        if standing_in != self._standing_in:
            if standing_in:
                log.warning("beat is silent: the watcher sends the self-check until it is back")
            else:
                log.info("beat reports again: the watcher no longer sends the self-check")
        self._standing_in = standing_in
