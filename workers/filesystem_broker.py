"""kombu's filesystem transport with atomic publishing.

Upstream writes the message file in place, so a worker polling the folder can
pick up a half-written (often empty) file and die on the JSON decode. Writing
under a name the reader ignores and renaming it into place makes a message
appear whole or not at all.
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


class Transport(filesystem.Transport):
    Channel = Channel
