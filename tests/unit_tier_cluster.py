"""The unit tier's own PostgreSQL cluster: fsync off, started for one test run and stopped after it.

The unit tier creates and drops hundreds of throwaway databases. On PostgreSQL 15 every DROP
DATABASE forces an immediate checkpoint of the whole server, so on the shared server the tier
spent about a third of its time waiting for checkpoints that flush everyone's writes. A private
cluster without fsync makes those checkpoints cheap and keeps the load off the shared server. The
other tiers (processes, containers, clusters of their own) keep using the shared server, so both
stay tested. Selected with `DBMON_TEST_PG=private` (the Makefile's unit tier sets it).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests import services

SETTINGS = {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off", "max_connections": "400"}


def wanted() -> bool:
    return os.environ.get("DBMON_TEST_PG", "shared") == "private"


def start():
    """Start the cluster and point every test (this process and the workers it spawns) at it;
    None when the server binaries are missing outside CI (the shared server is used then)."""
    from tests.posture.clusters import PG_BIN, PrivateCluster

    if not (PG_BIN / "initdb").exists() or not shutil.which("runuser") or os.geteuid() != 0:
        if services.REQUIRE:
            raise pytest.UsageError(f"DBMON_TEST_PG=private needs PostgreSQL server binaries in {PG_BIN}, "
                                    "runuser and root")
        return None
    cluster = PrivateCluster()
    try:
        cluster.start(listen="127.0.0.1", **SETTINGS)
    except BaseException:
        cluster.stop()
        raise
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    # Workers started by pytest-xdist inherit the environment; this process has already read it.
    os.environ["DBMON_TEST_PG_ADMIN"] = url
    services.PG_ADMIN_URL = url
    return cluster
