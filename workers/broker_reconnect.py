"""Keep a worker alive through a Redis broker restart.

Celery's reconnect path collects the broker connection (which drops the transport's
connection info) and then closes it again, while tasks started before the outage go on and
finish afterwards. Two things then reach for a broker address that is gone, and fail with an
AttributeError that kombu does not treat as a connection error, so the worker exits instead
of reconnecting:

- closing a channel that had a BRPOP in flight and an unacknowledged message tries to push
  the message back;
- a late-acknowledged task that finishes after the reconnect acknowledges on the old channel.

Both are skipped here. Nothing is lost: the message is still in Redis's unacked set and the
transport puts it back after the visibility timeout (the task ledger redelivers it too, and
its conditional claim makes a finished run's second delivery a no-op).
"""

from __future__ import annotations

import logging

from kombu.transport import redis as redis_transport

log = logging.getLogger("dbmon.broker")
_GUARD = "_dbmon_guarded"


def _collected(channel) -> bool:
    transport = getattr(channel, "connection", None)
    return transport is None or getattr(transport, "client", None) is None


def install() -> None:
    channel, qos = redis_transport.Channel, redis_transport.QoS
    if getattr(channel.close, _GUARD, False):
        return
    original_close, original_ack, original_reject = channel.close, qos.ack, qos.reject

    def close(self):
        if self.connection is not None and _collected(self):
            self.do_restore = False
        return original_close(self)

    def ack(self, delivery_tag):
        if _collected(self.channel):
            log.info("ack of %s dropped: its broker connection is gone; the visibility timeout restores it",
                     delivery_tag)
            return None
        return original_ack(self, delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if _collected(self.channel):
            log.info("reject of %s dropped: its broker connection is gone", delivery_tag)
            return None
        return original_reject(self, delivery_tag, requeue=requeue)

    for fn in (close, ack, reject):
        setattr(fn, _GUARD, True)
    channel.close, qos.ack, qos.reject = close, ack, reject
