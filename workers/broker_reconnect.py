"""Keep a worker alive through a Redis broker restart.

Celery's reconnect path collects the broker connection (which drops the transport's
connection info) and then closes it again. If a BRPOP was in flight and a message was
delivered but not yet acknowledged, the first close stops at the failed BRPOP read, and the
second one tries to push the unacknowledged message back with no broker address left: an
AttributeError that kombu does not treat as a connection error, so the worker exits instead of
reconnecting. Skipping that restore is safe: the message is still in Redis's unacked set, and
the transport puts it back after the visibility timeout (the task ledger redelivers it too
if Redis lost it).
"""

from __future__ import annotations

from kombu.transport import redis as redis_transport

_GUARD = "_dbmon_guarded_close"


def install() -> None:
    channel = redis_transport.Channel
    if getattr(channel.close, _GUARD, False):
        return
    original = channel.close

    def close(self):
        transport = self.connection
        if transport is not None and getattr(transport, "client", None) is None:
            self.do_restore = False
        return original(self)

    setattr(close, _GUARD, True)
    channel.close = close
