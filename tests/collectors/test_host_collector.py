"""Host sampling as the task runs it: a watch path that cannot be resolved fails it, once said."""

from __future__ import annotations

import os

import pytest
import yaml
from sqlalchemy import select

from monitor_app.errors import DbmonError
from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings
from monitor_app.store.models import Event, MetricSample
from workers.tasks.metrics import host_sample


def test_a_symlink_loop_under_a_watch_path_fails_host_sampling_until_it_is_gone(sqlite_store, tmp_path):
    loop_a, loop_b = tmp_path / "a", tmp_path / "b"
    os.symlink(loop_b, loop_a)
    os.symlink(loop_a, loop_b)
    config = tmp_path / "dbmon.yaml"
    config.write_text(yaml.safe_dump({"watch": [{"path": str(loop_a / "data")}]}))
    rt = Runtime(load_settings(data_dir=tmp_path, database_url=sqlite_store.url, secret_key="k",
                               config_file=config), sender=lambda *a: None)
    rt.__dict__["store"] = sqlite_store

    for _ in range(2):
        with pytest.raises(DbmonError, match="symlink loop"):
            host_sample.domain_fn(rt)
    with sqlite_store.session() as s:
        assert s.scalar(select(MetricSample.id).limit(1)) is None
        [failed] = s.scalars(select(Event).where(Event.type.like("host.check_%"))).all()
        assert failed.type == "host.check_failed" and "symlink loop" in failed.payload["error"]
        host_id = failed.asset_id

    loop_a.unlink()
    loop_b.unlink()
    assert host_sample.domain_fn(rt)["asset_id"] == host_id
    with sqlite_store.session() as s:
        assert [e.type for e in s.scalars(select(Event).where(Event.type.like("host.check_%")).order_by(Event.id))] == [
            "host.check_failed", "host.check_recovered"]


def test_disk_and_network_rates_come_from_two_samples_and_database_processes_are_counted(sqlite_store, tmp_path):
    import socket
    import threading

    from tests.services import free_port

    rt = Runtime(load_settings(data_dir=tmp_path, database_url=sqlite_store.url, secret_key="k"),
                 sender=lambda *a: None)
    rt.__dict__["store"] = sqlite_store
    first = host_sample.domain_fn(rt)["samples"]
    assert "host.disk_write_bytes_per_second" not in first  # one sample: no interval yet
    assert first["host.disk_write_bytes"] >= 0 and first["host.net_sent_bytes"] >= 0
    # Something for each rate to count: 8 MiB written and synced, 4 MiB over loopback.
    with open(tmp_path / "blob", "wb") as f:
        f.write(os.urandom(8 << 20))
        f.flush()
        os.fsync(f.fileno())
    port, received = free_port(), []

    def drain(peer):
        while chunk := peer.recv(1 << 16):
            received.append(len(chunk))
        peer.close()

    with socket.create_server(("127.0.0.1", port)) as server:
        client = socket.create_connection(("127.0.0.1", port))
        reader = threading.Thread(target=drain, args=(server.accept()[0],))
        reader.start()
        client.sendall(b"x" * (4 << 20))
        client.close()
        reader.join(timeout=30)
    received = sum(received)
    second = host_sample.domain_fn(rt)["samples"]
    assert second["host.disk_write_bytes"] - first["host.disk_write_bytes"] >= 8 << 20
    assert second["host.disk_write_bytes_per_second"] > 0
    assert second["host.net_sent_bytes_per_second"] > 0 and received == 4 << 20
    assert 0 <= second["host.disk_busy_ratio"] <= 1
    # The PostgreSQL server the tests use runs on this host.
    assert second["host.db_processes[postgresql]"] >= 1 and second["host.db_memory_bytes[postgresql]"] > 0
    assert second["host.db_cpu_percent[postgresql]"] >= 0


def test_host_samples_are_series_too_so_forecasts_and_rollups_see_them(sqlite_store, tmp_path):
    from monitor_app.store.models import MetricPoint, MetricSeries

    rt = Runtime(load_settings(data_dir=tmp_path, database_url=sqlite_store.url, secret_key="k"),
                 sender=lambda *a: None)
    rt.__dict__["store"] = sqlite_store
    sampled = host_sample.domain_fn(rt)
    host_sample.domain_fn(rt)
    with sqlite_store.session() as s:
        disk = s.scalars(select(MetricSeries).where(MetricSeries.name == "host.disk_percent")).one()
        assert disk.asset_id == sampled["asset_id"] and disk.labels == {"path": str(tmp_path)}
        assert disk.last_value == pytest.approx(sampled["samples"][f"host.disk_percent[{tmp_path}]"], abs=1.0)
        assert len(s.scalars(select(MetricPoint).where(MetricPoint.series_id == disk.id)).all()) == 2
        rows = s.scalar(select(MetricSample.id).where(MetricSample.name == "host.disk_percent").limit(1))
        assert rows is not None  # the per-sample rows stay for what reads them
