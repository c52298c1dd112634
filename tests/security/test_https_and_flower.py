"""HTTPS for the API and Flower, forwarded headers from a trusted proxy, and a read-only Flower:
real gunicorn, Flower and `dbmon up` processes on loopback."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest
import requests
from sqlalchemy import select

from monitor_app.store.models import AuditEntry
from tests.harness import Deployment, wait_for
from tests.security.tls_material import TestCA
from tests.services import free_port


@pytest.fixture()
def embedded(tmp_path):
    d = Deployment("embedded", tmp_path)
    try:
        d.migrate()
        yield d
    finally:
        d.close()


@pytest.fixture()
def tls_env(tmp_path) -> tuple[dict, Path]:
    ca = TestCA(tmp_path / "pki")
    server = ca.issue("server", dns=("localhost",), ips=("127.0.0.1",))
    return {"DBMON_API_TLS_CERT": str(server.cert), "DBMON_API_TLS_KEY": str(server.key)}, ca.cert


def _status(url: str, **kw) -> int | None:
    try:
        return requests.get(url, timeout=3, **kw).status_code
    except requests.RequestException:
        return None


def key(d: Deployment, role: str) -> str:
    return d.cli("apikey", "create", "--role", role, "--name", role, check=True).stdout.strip()


@pytest.mark.slow
@pytest.mark.deployment
def test_dbmon_api_serves_https_with_the_configured_certificate_and_nothing_in_clear(embedded, tls_env):
    env, ca = tls_env
    port = free_port()
    embedded.env.update(env)
    embedded.start("api", "api", "--port", str(port))
    wait_for(lambda: _status(f"https://127.0.0.1:{port}/healthz", verify=str(ca)) == 200, 60, 0.2,
             what="API over HTTPS")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
    with pytest.raises(requests.exceptions.SSLError):  # a client that checks finds the CA's certificate only
        requests.get(f"https://127.0.0.1:{port}/healthz", timeout=3)


@pytest.mark.slow
@pytest.mark.deployment
def test_a_lone_certificate_is_a_settings_error_naming_the_missing_key(embedded, tls_env):
    env, _ = tls_env
    embedded.env["DBMON_API_TLS_CERT"] = env["DBMON_API_TLS_CERT"]
    done = embedded.cli("api", "--port", str(free_port()), timeout=30)
    assert done.returncode == 2 and "DBMON_API_TLS_KEY" in done.stderr and "Traceback" not in done.stderr


def _denied_from(d: Deployment, port: int, viewer: str, forwarded_for: str) -> str:
    wait_for(lambda: _status(f"http://127.0.0.1:{port}/healthz") == 200, 60, 0.2, what="API")
    r = requests.post(f"http://127.0.0.1:{port}/api/v1/scans", json={"kind": "host"}, timeout=5,
                      headers={"X-API-Key": viewer, "X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"})
    assert r.status_code == 403
    with d.runtime.store.session() as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied")
                         .order_by(AuditEntry.id.desc())).first().remote_addr


@pytest.mark.slow
@pytest.mark.deployment
def test_the_audit_log_records_the_client_behind_a_trusted_proxy_and_ignores_forged_headers(embedded):
    viewer = key(embedded, "viewer")
    direct, proxied = free_port(), free_port()
    embedded.start("api-direct", "api", "--port", str(direct))
    embedded.env["DBMON_API_TRUSTED_PROXIES"] = "1"
    embedded.start("api-proxied", "api", "--port", str(proxied))
    # Without a trusted proxy the header is the client's own claim: the socket's address is recorded.
    assert _denied_from(embedded, direct, viewer, "203.0.113.7") == "127.0.0.1"
    # One trusted proxy: the address it appended (the last one) is the client's.
    assert _denied_from(embedded, proxied, viewer, "198.51.100.1, 203.0.113.9") == "203.0.113.9"


@pytest.mark.slow
@pytest.mark.deployment
def test_flower_requires_dbmon_credentials_and_cannot_run_tasks(embedded):
    operator, viewer = key(embedded, "operator"), key(embedded, "viewer")
    port = free_port()
    embedded.env["DBMON_FLOWER_BASIC_AUTH"] = "ops:flower-pw"
    embedded.start("flower", "flower", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _status(base + "/") is not None, 60, 0.2, what="Flower")

    def get(path: str, **kw) -> requests.Response:
        return requests.get(base + path, timeout=10, **kw)

    assert get("/healthcheck").text == "OK"  # for load balancers, like /healthz
    anonymous = get("/api/workers")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert get("/", auth=("ops", "wrong")).status_code == 401
    assert get("/api/workers", headers={"X-API-Key": viewer}).status_code == 403
    assert get("/api/workers", headers={"X-API-Key": operator}).status_code == 200
    assert get("/", auth=("anyone", operator)).status_code == 200  # a browser sends the key as the password
    assert get("/", auth=("ops", "flower-pw")).status_code == 200

    queue = Path(embedded.env["DBMON_DATA_DIR"]) / "broker" / "queue"
    before = sorted(queue.iterdir()) if queue.exists() else []
    for path in ("/api/task/async-apply/assets.sync_config", "/api/task/send-task/assets.sync_config",
                 "/api/task/apply/assets.sync_config", "/api/worker/shutdown/any@host"):
        for auth in ({"auth": ("ops", "flower-pw")}, {"headers": {"X-API-Key": operator}}):
            r = requests.post(base + path, json={}, timeout=10, **auth)
            assert r.status_code == 403 and "read-only" in r.json()["message"], (path, r.text)
    assert get("/api/task/async-apply/assets.sync_config", auth=("ops", "flower-pw")).status_code == 403
    assert (sorted(queue.iterdir()) if queue.exists() else []) == before  # nothing was published


@pytest.mark.slow
@pytest.mark.deployment
def test_dbmon_up_serves_https_and_starts_flower_only_when_enabled(embedded, tls_env):
    env, ca = tls_env
    api_port, flower_port = free_port(), free_port()
    embedded.env.update(env, DBMON_API_PORT=str(api_port), DBMON_FLOWER_PORT=str(flower_port))
    up = embedded.start("up", "up")
    wait_for(lambda: _status(f"https://127.0.0.1:{api_port}/healthz", verify=str(ca)) == 200, 90, 0.3,
             what="API over HTTPS under dbmon up")
    assert "API https://127.0.0.1:" in embedded.log("up")
    names = " ".join(" ".join(c.cmdline()) for c in psutil.Process(up.pid).children())
    assert " flower" not in names and _status(f"https://127.0.0.1:{flower_port}/", verify=str(ca)) is None
    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=60) == 0
    embedded.procs.pop("up")

    embedded.env["DBMON_FLOWER_ENABLED"] = "true"
    up = embedded.start("up2", "up")
    wait_for(lambda: _status(f"https://127.0.0.1:{flower_port}/", verify=str(ca)) == 401, 90, 0.3,
             what="Flower over HTTPS under dbmon up")
    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=60) == 0


def test_ack_links_keep_the_public_url_scheme_and_default_to_the_api_scheme(tmp_path, tls_env):
    from monitor_app.alerting import ack_links
    from monitor_app.alerting.service import alert_operations_for
    from monitor_app.config.declarative import parse_config
    from monitor_app.errors import ConfigError
    from monitor_app.platform.runtime import Runtime
    from monitor_app.config.settings import load_settings

    env, _ = tls_env
    config = tmp_path / "dbmon.yaml"
    config.write_text("alerting: {}\n")
    settings = load_settings(_env_file=None, data_dir=tmp_path, secret_key="k", config_file=config, api_port=8443,
                             api_tls_cert=env["DBMON_API_TLS_CERT"], api_tls_key=env["DBMON_API_TLS_KEY"])
    assert alert_operations_for(Runtime(settings)).cfg.public_url == "https://127.0.0.1:8443"
    config.write_text("alerting:\n  public_url: https://dbmon.example.org/ops/\n")
    rt = Runtime(settings)
    url = ack_links.ack_url(alert_operations_for(rt).cfg.public_url, "k", 3)
    assert url.startswith("https://dbmon.example.org/ops/api/v1/alerts/ack/")
    with pytest.raises(ConfigError) as exc:
        parse_config({"alerting": {"public_url": "javascript:alert(1)"}})
    assert exc.value.errors[0][0] == "alerting.public_url"
