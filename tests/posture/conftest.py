"""Private clusters, one exposed and one hardened, and a release list that fits their version."""

from __future__ import annotations

import os

import pytest

from monitor_app.posture.releases import parse_release_list
from tests.posture.clusters import PrivateCluster

SUPERUSER_PASSWORD = "hardened-secret"


@pytest.fixture(scope="module")
def exposed_cluster():
    """Everything a DBA would flag: trust from anywhere, ssl off on every address, md5,
    privileged application roles, CREATE on public for PUBLIC, a group/world-readable data directory."""
    cluster = None
    try:
        cluster = PrivateCluster()
        cluster.write_hba("local all all trust\n"
                          "host all all 0.0.0.0/0 trust\n"
                          "host all all ::/0 md5\n")
        cluster.start(listen="*", isolated=True, ssl="off", password_encryption="md5")
        cluster.run("CREATE ROLE app LOGIN SUPERUSER PASSWORD 'app-secret'",
                    "CREATE ROLE mgr LOGIN CREATEROLE",
                    "CREATE ROLE watcher LOGIN",
                    "CREATE ROLE reporting NOLOGIN SUPERUSER",
                    "GRANT CREATE ON SCHEMA public TO PUBLIC")
        os.chmod(cluster.data, 0o755)
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()


@pytest.fixture(scope="module")
def hardened_cluster():
    cluster = None
    try:
        cluster = PrivateCluster(superuser_password=SUPERUSER_PASSWORD)
        cluster.write_hba("local all postgres scram-sha-256\n"
                          "host all all 127.0.0.1/32 scram-sha-256\n")
        cluster.start(listen="127.0.0.1", ssl="off")
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()


def release_list_for(version_num: int, behind: int = 0):
    """A list in which the server's branch is `behind` minor releases ahead of the server."""
    major, minor = divmod(version_num, 10000)
    return parse_release_list({"as_of": "2026-11-12", "branches": {
        str(major): {"latest": f"{major}.{minor + behind}", "released": "2026-11-12", "end_of_life": "2099-01-01"}}},
        "test list")
