"""A worker's broker connection survives the Redis restart that used to make it exit."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Queue

from tests.harness import RedisServer
from workers import broker_reconnect


@pytest.fixture()
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def _consume_one_without_ack(conn: Connection, queue: Queue) -> list:
    with conn.Producer() as producer:
        producer.publish({"task": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])
    received: list = []
    # A worker's channel also carries an auto-delete fanout binding (remote control).
    broadcast = Queue("broadcast", Exchange("broadcast", type="fanout"), auto_delete=True)
    consumer = conn.Consumer([queue, broadcast], callbacks=[lambda body, message: received.append(message)])
    consumer.consume()
    conn.drain_events(timeout=5)
    # What a worker's event loop does next: wait on the broker with a BRPOP in flight.
    consumer.channel._brpop_start()
    return received


def test_closing_after_the_broker_died_mid_poll_does_not_raise(redis_server):
    broker_reconnect.install()
    queue = Queue("tasks", Exchange("tasks", type="direct"), routing_key="tasks")
    conn = Connection(redis_server.url, transport_options={"visibility_timeout": 1})
    received = _consume_one_without_ack(conn, queue)
    assert len(received) == 1 and not received[0].acknowledged

    redis_server.stop()
    try:  # Celery's reconnect path: collect, then close the same connection again.
        conn.collect(socket_timeout=1)
    except Exception:  # noqa: BLE001 - celery ignores every error here too
        pass
    conn.close()

    redis_server.start()
    with Connection(redis_server.url) as fresh:
        assert len(_consume_one_without_ack(fresh, queue)) == 1


def test_install_is_idempotent():
    from kombu.transport import redis as redis_transport

    broker_reconnect.install()
    first = redis_transport.Channel.close
    broker_reconnect.install()
    assert redis_transport.Channel.close is first


def test_a_task_finishing_after_the_reconnect_acknowledges_without_raising(redis_server):
    broker_reconnect.install()
    queue = Queue("tasks", Exchange("tasks", type="direct"), routing_key="tasks")
    conn = Connection(redis_server.url)
    [message] = _consume_one_without_ack(conn, queue)
    redis_server.stop()
    try:
        conn.collect(socket_timeout=1)
    except Exception:  # noqa: BLE001
        pass
    conn.close()
    message.ack()  # the late ack of a task that ran through the outage
    assert message.acknowledged
