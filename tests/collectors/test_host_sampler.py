"""Each worker host samples itself: one sampler per host name holds its lease and samples on a
timer; another host's sampler samples its own host; a second process on the same host stands by
and takes over when the first stops."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from monitor_app.config.settings import load_settings
from monitor_app.platform.runtime import Runtime
from monitor_app.store.models import Asset, MetricSample
from workers.host_sampler import HostSampler


def runtime(store, tmp_path, name: str) -> Runtime:
    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k",
                             host_name=name, host_sample_interval=0.3, leader_lease_seconds=1)
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    return rt


def samples_by_host(store) -> dict[str, int]:
    with store.session() as s:
        rows = s.execute(select(Asset.name, func.count(MetricSample.id)).join(MetricSample, MetricSample.asset_id == Asset.id)
                         .where(Asset.kind == "host", MetricSample.name == "host.cpu_percent").group_by(Asset.name))
        return dict(rows.all())


def wait_until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_every_host_samples_itself_under_its_own_name(sqlite_store, tmp_path):
    alpha, beta = (HostSampler(lambda n=n: runtime(sqlite_store, tmp_path, n)) for n in ("alpha", "beta"))
    alpha.start()
    beta.start()
    try:
        wait_until(lambda: all(samples_by_host(sqlite_store).get(n, 0) >= 3 for n in ("alpha", "beta")))
    finally:
        alpha.stop()
        beta.stop()
    with sqlite_store.session() as s:
        hosts = {a.name: a.status for a in s.scalars(select(Asset).where(Asset.kind == "host"))}
    assert hosts == {"alpha": "up", "beta": "up"}


def test_a_second_sampler_on_the_same_host_stands_by_and_takes_over(sqlite_store, tmp_path):
    first, second = (HostSampler(lambda: runtime(sqlite_store, tmp_path, "gamma")) for _ in range(2))
    first.start()
    wait_until(lambda: first.samples >= 2)
    second.start()
    time.sleep(1.5)
    try:
        assert second.samples == 0 and first.samples >= 4  # one process samples the host, not two
        first.stop()
        taken_over_at = samples_by_host(sqlite_store)["gamma"]
        wait_until(lambda: second.samples >= 2)
        assert samples_by_host(sqlite_store)["gamma"] >= taken_over_at + 2
    finally:
        first.stop()
        second.stop()
