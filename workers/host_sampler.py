"""Each worker host samples itself on a timer, whatever tasks its worker takes.

A sample taken by a beat task lands on whichever worker picks it up, so in a distributed
deployment only some hosts were ever sampled. Every worker process runs this thread instead; a
lease named after the host lets one process per host sample (a second worker on the same machine
stands by), and when the holder dies another takes over within the lease's time to live.
"""

from __future__ import annotations

import logging
import threading
import time

from monitor_app.errors import DbmonError
from monitor_app.metrics.host_sampling import host_name, sample_and_store
from monitor_app.platform.leader_lease import Lease, lease_for

log = logging.getLogger("dbmon.host_sampler")


class HostSampler:
    def __init__(self, runtime_factory, lease: Lease | None = None):
        self._runtime_factory = runtime_factory
        self._lease = lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="host-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        rt = self._runtime_factory()  # its own: never a store a forked pool process inherited
        settings = rt.settings
        lease = self._lease or lease_for(settings, f"host-sampler-{host_name(settings)}")
        interval = settings.host_sample_interval
        # Renewed well inside its time to live, however long the sampling interval is.
        tick = min(interval, settings.leader_lease_seconds / 3)
        due = time.monotonic() + interval  # as a beat entry would: the first sample one interval in
        try:
            while not self._stop.is_set():
                if self._holds(lease) and time.monotonic() >= due:
                    due = time.monotonic() + interval
                    self._sample(rt)
                self._stop.wait(max(0.05, min(tick, due - time.monotonic())))
        finally:
            lease.release()

    @staticmethod
    def _holds(lease: Lease) -> bool:
        try:
            return lease.hold()
        except Exception:  # noqa: BLE001 - a broker outage must not end the thread
            log.warning("host sampler: could not renew its lease", exc_info=True)
            return False

    def _sample(self, rt) -> None:
        try:
            sample_and_store(rt)
            self.samples += 1
        except DbmonError as exc:  # already reported as a collector failure
            log.warning("host sampler: %s", exc.message)
        except Exception:  # noqa: BLE001 - the next interval tries again; the store may be back
            log.warning("host sampler: sampling failed", exc_info=True)
