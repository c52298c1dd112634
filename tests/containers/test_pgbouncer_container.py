"""A real PgBouncer inside a real container on the host network: discovered as a pooler, handed
a console login by a credential rule, and polled by the PgBouncer collector with nothing else
configured."""

from __future__ import annotations

import os
import pwd
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from monitor_app.access.credential_box import CredentialBox
from monitor_app.config.declarative import parse_config
from monitor_app.containers.discovery import refresh_asset
from monitor_app.metrics import pgbouncer_tier
from monitor_app.store.models import Asset
from tests.containers.conftest import wait_for
from tests.containers.follow import Harness
from tests.metrics.pg_fast_helpers import latest
from tests.metrics.pgbouncer_process import PgBouncer
from tests.schema.conftest import make_runtime

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_pgbouncer_container_is_discovered_and_its_pools_are_polled(sqlite_store, docker_engine, runner,
                                                                      pg_database, tmp_path):
    name, url = pg_database
    server = urlparse(url)
    bouncer = PgBouncer({"appdb": f"host={server.hostname} port={server.port or 5432} dbname={name}"})
    uid = pwd.getpwnam("postgres").pw_uid
    containers_config = parse_config({"containers": {"credentials": [
        {"match": {"name": "*pool*"}, "user": "stats", "insecure": True}]}}).containers
    box = CredentialBox("test-secret-key")
    h = Harness(sqlite_store, docker_engine, containers_config).start()
    try:
        ro = {p: {"bind": p, "mode": "ro"} for p in ("/usr", "/lib", "/lib64", "/etc", "/bin") if os.path.exists(p)}
        # A neutral image: only the running process says "PgBouncer".
        runner.run("dbmct/base:1", "pool", network="host", user=f"{uid}:{uid}",
                   binds={**ro, str(bouncer.root): {"bind": str(bouncer.root), "mode": "rw"}},
                   command=bouncer.command)
        container = runner.name("pool")
        h.wait_event(container, "container.start")

        def discovered():
            with sqlite_store.session() as s:
                return s.scalar(select(Asset.id).where(Asset.external_id == container))
        asset_id = wait_for(discovered, 10)

        def listening():
            with sqlite_store.session() as s:
                asset = s.get(Asset, asset_id)
                refresh_asset(s, docker_engine, asset, containers_config, box)
                return asset.connection if asset.connection.get("port") == bouncer.port else None
        connection = wait_for(listening, 20, 0.2)
        with sqlite_store.session() as s:
            asset = s.get(Asset, asset_id)
            assert (asset.engine, asset.kind) == ("pgbouncer", "pooler")
            assert asset.details["monitoring"]["credentials"] == "containers.credentials[0]"
        assert (connection["host"], connection["user"], connection["database"]) == ("127.0.0.1", "stats", "pgbouncer")

        rt = make_runtime(sqlite_store, tmp_path)
        assert pgbouncer_tier.due_assets(rt) == [asset_id]  # wired with nothing more to configure
        assert pgbouncer_tier.run_poll(rt, asset_id)["samples"] > 0
        assert latest(sqlite_store, asset_id, "pgbouncer.clients_waiting_total") == 0
        assert latest(sqlite_store, asset_id, "pgbouncer.databases") >= 2
    finally:
        h.stop()
        bouncer.stop()
