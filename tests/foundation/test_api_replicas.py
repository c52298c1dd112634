"""Two API processes serve one port (SO_REUSEPORT): the kernel spreads connections over both,
state written through one is seen through the other, and one dying leaves the port served."""

from __future__ import annotations

import re
import signal

import pytest
import requests

from tests.harness import Deployment, wait_for
from tests.services import free_port, port_open

pytestmark = [pytest.mark.slow, pytest.mark.deployment]


def _served(d: Deployment, name: str, path: str) -> int:
    return len(re.findall(rf'"GET {re.escape(path)}', d.log(name)))


def _fresh_get(url: str, key: str) -> requests.Response:
    # A new connection each time: the kernel picks a replica per connection, not per request.
    with requests.Session() as session:
        return session.get(url, headers={"X-API-Key": key, "Connection": "close"}, timeout=10)


def _answers(url: str, key: str) -> bool:
    try:
        return _fresh_get(url, key).status_code == 200
    except requests.ConnectionError:
        return False


def test_two_api_replicas_share_one_port_and_the_state_behind_it(tmp_path):
    port = free_port()
    d = Deployment("distributed", tmp_path, {"DBMON_API_PORT": str(port), "DBMON_API_WORKERS": "1"})
    try:
        d.migrate()
        d.write_config("assets: []\n")
        from monitor_app.access.api_keys import create_key

        with d.runtime.store.session() as s:
            _, admin = create_key(s, name="replica-admin", role="admin")
        for name in ("api-a", "api-b"):
            d.start(name, "api")
            wait_for(lambda name=name: "Booting worker" in d.log(name), 60, what=f"{name} serving")
        assert d.procs["api-a"].poll() is None and d.procs["api-b"].poll() is None, d.log("api-b")
        base = f"http://127.0.0.1:{port}"

        created = requests.post(f"{base}/api/v1/apikeys", json={"name": "replica-viewer", "role": "viewer"},
                                headers={"X-API-Key": admin}, timeout=10)
        assert created.status_code == 201, created.text
        viewer = created.json()["key"]
        # The key written through one replica authenticates on both.
        for _ in range(40):
            assert _fresh_get(f"{base}/api/v1/assets", viewer).status_code == 200
        assert _served(d, "api-a", "/api/v1/assets") > 0 and _served(d, "api-b", "/api/v1/assets") > 0, (
            _served(d, "api-a", "/api/v1/assets"), _served(d, "api-b", "/api/v1/assets"))

        d.kill("api-a", signal.SIGKILL)
        # Connections the kernel queued on the dead replica's socket are reset (a client or load
        # balancer retries them); once its socket is gone, the survivor takes every connection.
        wait_for(lambda: _answers(f"{base}/api/v1/assets", viewer), 10, interval=0.1, what="the port served again")
        assert port_open("127.0.0.1", port)
        for _ in range(20):
            assert _fresh_get(f"{base}/api/v1/assets", viewer).status_code == 200
    finally:
        d.close()
