"""Real-engine fixtures: busybox images made with `docker import`, containers labelled for cleanup."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time
import uuid

import pytest

from monitor_app.containers.config import ContainersConfig
from tests.services import missing

# Scoped to this concern: other suites on the same engine label their own containers.
TEST_LABEL, TEST_LABEL_VALUE = "dbmon-test", "containers"
BUSYBOX = shutil.which("busybox")


def _busybox_rootfs() -> bytes:
    """A tar of /bin/busybox plus applet links; an empty tar when no busybox (host-binary images)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if BUSYBOX:
            tar.add(BUSYBOX, arcname="bin/busybox")
            for applet in ("sh", "sleep", "nc", "httpd", "tail", "true", "false", "cat", "kill"):
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
    return buf.getvalue()


def make_image(client, tag: str, *, expose=(), cmd=("/bin/sleep", "3600"), env=(),
               label_value: str = TEST_LABEL_VALUE) -> str:
    changes = [f"LABEL {TEST_LABEL}={label_value}", f'CMD {list(cmd)!r}'.replace("'", '"')]
    changes += [f"EXPOSE {p}" for p in expose]
    changes += [f"ENV {e}" for e in env]
    args = ["docker", "import"] + [a for c in changes for a in ("--change", c)] + ["-", tag]
    subprocess.run(args, input=_busybox_rootfs(), check=True, capture_output=True, timeout=60)
    return tag


IMAGES = {
    "dbmct/postgres:16": dict(expose=[5432]),
    "dbmct/mysql:8": dict(expose=[3306, 33060]),
    "dbmct/redis:7": dict(expose=[6379]),
    "dbmct/mongo:7": dict(expose=[27017]),
    "dbmct/nginx:1.25": dict(expose=[80]),
    "dbmct/adminer:4": dict(expose=[8080]),
    "dbmct/postgres-exporter:0.15": dict(expose=[9187]),
    "dbmct/base:1": dict(),
}


@pytest.fixture(scope="session")
def images(docker_engine):
    if not BUSYBOX:
        missing("busybox (apt-get install busybox-static) to build test images")
    for tag, spec in IMAGES.items():
        make_image(docker_engine, tag, **spec)
    yield IMAGES
    cleanup(docker_engine)


def cleanup(client, value: str = TEST_LABEL_VALUE) -> None:
    for c in client.api.containers(all=True, filters={"label": f"{TEST_LABEL}={value}"}):
        try:
            client.api.remove_container(c["Id"], force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
    for img in client.api.images(filters={"label": f"{TEST_LABEL}={value}"}):
        try:
            client.api.remove_image(img["Id"], force=True)
        except Exception:  # noqa: BLE001
            pass


class Runner:
    """Starts labelled containers with unique names and removes them afterwards."""

    def __init__(self, client):
        self.client = client
        self.ids: list[str] = []
        self.tag = uuid.uuid4().hex[:6]

    def name(self, base: str) -> str:
        return f"dbmt-{self.tag}-{base}"

    def run(self, image: str, base: str, *, command=None, env=None, labels=None, network="none",
            start=True, user=None, **host_config):
        labels = {TEST_LABEL: TEST_LABEL_VALUE, **(labels or {})}
        hc = self.client.api.create_host_config(network_mode=network, **host_config)
        c = self.client.api.create_container(image, command=command, name=self.name(base), environment=env,
                                             labels=labels, host_config=hc, user=user)
        self.ids.append(c["Id"])
        if start:
            self.client.api.start(c["Id"])
        return c["Id"]

    def remove(self, cid: str) -> None:
        self.client.api.remove_container(cid, force=True)

    def close(self) -> None:
        for cid in self.ids:
            try:
                self.client.api.remove_container(cid, force=True)
            except Exception:  # noqa: BLE001 - removed by the test itself
                pass


@pytest.fixture()
def runner(docker_engine, images):
    r = Runner(docker_engine)
    yield r
    r.close()


@pytest.fixture()
def containers_config():
    return ContainersConfig()


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def pg_bin() -> str | None:
    for version in ("17", "16", "15", "14"):
        path = f"/usr/lib/postgresql/{version}/bin"
        if os.path.exists(f"{path}/postgres"):
            return path
    return None
