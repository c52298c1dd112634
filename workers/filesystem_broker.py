"""kombu's filesystem transport with atomic file creation.

Upstream writes message files and new exchange tables in place, so a process
polling the folder (a worker) or routing a message (the API) can read a
half-written, often empty, file and die on the JSON decode. Here each file is
written under a name nobody reads and then renamed or linked into place, so it
appears whole or not at all. And a worker waiting for messages notices a request to stop
within one polling interval.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".partial"  # reader matches "<queue>.msg" exactly, so skips this
        try:
            with open(partial, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"cannot add message file {final!r}") from exc


    def _queue_bind(self, exchange, routing_key, pattern, queue):
        table = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        if not table.exists():
            staged = table.with_name(f".{table.name}.{uuid.uuid4().hex}")
            staged.write_bytes(str_to_bytes(dumps([[routing_key or "", pattern or "", queue or ""]])))
            try:
                os.link(staged, table)  # fails if another process created it first
                return
            except FileExistsError:
                pass
            finally:
                staged.unlink()
        # The table exists: upstream updates it in place under an exclusive lock, which readers respect.
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    Channel = Channel

    def drain_events(self, connection, timeout=None):
        """Wait for a message as upstream does, but give up as soon as the worker is asked to stop.

        A worker on this transport runs celery's blocking loop, which looks at the stop request
        only between waits of two seconds; stopping quickly matters more than that wait."""
        from celery.worker import state

        deadline = None if timeout is None else monotonic() + timeout
        while True:
            step = self.polling_interval if deadline is None else min(self.polling_interval or 0.1,
                                                                    max(0.0, deadline - monotonic()))
            try:
                return super().drain_events(connection, timeout=step or 0.01)
            except TimeoutError:
                if state.should_stop is not None or state.should_terminate is not None:
                    raise
                if deadline is not None and monotonic() >= deadline:
                    raise
