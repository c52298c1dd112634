"""watchdog observers that ask the kernel only for the inotify events a file watch can use.

A watch that reports only permissions (a data directory, WAL) of a busy database was handed every
write: thousands of IN_MODIFY a second that watchdog read, turned into events and dispatched, for
the watch to drop. watchdog derives its inotify mask from an event filter of its event classes,
which cannot say "attributes but not writes" (a modified-file filter asks for IN_ATTRIB and
IN_MODIFY alike), so these emitters set the mask themselves.

All emitters of one watchdog observer share its inotify instance, and the kernel keeps one watch,
with one mask, per directory and instance: the last emitter to add a directory would set the mask
for every other emitter watching it (a quiet data directory watch would take the writes away from
a config watch of the same directory). So each mask has its own observer, and inotify instance.
"""

from __future__ import annotations

from watchdog.observers.api import DEFAULT_OBSERVER_TIMEOUT, BaseObserver
from watchdog.observers.inotify import InotifyEmitter
from watchdog.observers.inotify_c import WATCHDOG_ALL_EVENTS, InotifyConstants, InotifyFD, Mask

# Opening and reading a file change nothing a scan compares: no watch needs them.
_READS = InotifyConstants.IN_OPEN | InotifyConstants.IN_CLOSE_NOWRITE
# Writing a file's content: the events of a busy database.
_WRITES = InotifyConstants.IN_MODIFY | InotifyConstants.IN_CLOSE_WRITE
CONTENT_MASK = Mask(WATCHDOG_ALL_EVENTS & ~_READS)
# A quiet watch still needs attributes (mode, owner), creates, deletes, renames and its own removal.
QUIET_MASK = Mask(CONTENT_MASK & ~_WRITES)


class _ContentEmitter(InotifyEmitter):
    def get_event_mask_from_filter(self) -> Mask:
        return CONTENT_MASK


class _QuietEmitter(InotifyEmitter):
    def get_event_mask_from_filter(self) -> Mask:
        return QUIET_MASK


class MaskedObserver(BaseObserver):
    """watchdog's InotifyObserver with one mask for all its watches: content writes or not."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self._inotify_fd = InotifyFD()
        self._inotify_fd.start()
        super().__init__(_QuietEmitter if quiet else _ContentEmitter, timeout=DEFAULT_OBSERVER_TIMEOUT,
                         inotify_fd=self._inotify_fd)

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self._inotify_fd.stop()
        self._inotify_fd.join()
