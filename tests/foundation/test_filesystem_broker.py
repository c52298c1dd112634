"""The embedded broker never hands a consumer a half-written message."""

from __future__ import annotations

import threading

import pytest
from kombu import Connection


@pytest.mark.slow
def test_it_delivers_every_message_whole_while_a_consumer_polls(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "polling_interval": 0.001,
               "control_folder": str(tmp_path / "control")}
    count = 150
    received: list[dict] = []
    errors: list[BaseException] = []

    # The consumer declares its queue before anything is published, as a worker does at start.
    consumer_conn = Connection("filesystem://", transport="workers.filesystem_broker:Transport",
                               transport_options=options)
    consumer_queue = consumer_conn.SimpleQueue("q")

    def consume():
        while len(received) < count:
            try:
                msg = consumer_queue.get(timeout=15)
            except BaseException as exc:  # noqa: BLE001 - the failure under test
                errors.append(exc)
                return
            received.append(msg.payload)
            msg.ack()

    consumer = threading.Thread(target=consume)
    consumer.start()
    with Connection("filesystem://", transport="workers.filesystem_broker:Transport",
                    transport_options=options) as conn:
        queue = conn.SimpleQueue("q")
        for i in range(count):
            queue.put({"i": i, "padding": "x" * 512_000})
    consumer.join(timeout=60)
    consumer_conn.release()
    assert errors == [], len(received)
    assert sorted(m["i"] for m in received) == list(range(count))
    assert not list(folder.glob("*.partial"))


def test_a_publisher_never_reads_an_exchange_table_while_it_is_created(tmp_path):
    """A worker declaring its queues while the API publishes must not crash either side."""
    failures = []
    for round_ in range(60):
        control = tmp_path / f"control-{round_}"
        options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "control_folder": str(control)}
        with Connection("filesystem://", transport="workers.filesystem_broker:Transport",
                        transport_options=options) as binder, \
             Connection("filesystem://", transport="workers.filesystem_broker:Transport",
                        transport_options=options) as reader:
            bind_channel, read_channel = binder.default_channel, reader.default_channel
            control.mkdir()
            start = threading.Barrier(2)

            def bind(start=start, bind_channel=bind_channel):
                start.wait()
                bind_channel._queue_bind("jobs", "jobs", None, "jobs")

            thread = threading.Thread(target=bind)
            thread.start()
            start.wait()
            try:
                for _ in range(200):
                    read_channel.get_table("jobs")
            except Exception as exc:  # noqa: BLE001 - the failure under test
                failures.append(exc)
            thread.join()
            assert [q.queue for q in read_channel.get_table("jobs")] == ["jobs"]
    assert failures == []


def test_waiting_for_messages_ends_at_a_stop_request_not_at_the_loops_two_seconds(tmp_path):
    import socket
    import time

    from celery.worker import state

    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "polling_interval": 0.05,
               "control_folder": str(tmp_path / "control")}
    with Connection("filesystem://", transport="workers.filesystem_broker:Transport",
                    transport_options=options) as conn:
        conn.SimpleQueue("q").consumer.consume()
        started = time.monotonic()
        with pytest.raises(socket.timeout):
            conn.drain_events(timeout=0.3)  # nothing to read and nobody stopping: the whole wait
        assert time.monotonic() - started >= 0.3
        timer = threading.Timer(0.2, lambda: setattr(state, "should_stop", 0))
        timer.start()
        try:
            started = time.monotonic()
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=2.0)  # what celery's blocking loop asks for
            assert time.monotonic() - started < 1.0
        finally:
            timer.cancel()
            state.should_stop = None
