"""The image and the compose file, for real: migrate, two API replicas on one port, N workers (two
unless DBMON_COMPOSE_WORKERS says otherwise), two beats and two watchers (one of each leads, the
other stands by) come up healthy; a scan through the API and a PostgreSQL schema change reach a
webhook; `down` leaves nothing.

The bundled redis and postgres images cannot be pulled here: docker-compose.ci.yml points the
services at the host's PostgreSQL and a private redis-server. The base image is a local Debian
bookworm one (.ci/base-image); dbmon's dependencies come from the hashed lock, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid

import psycopg2
import pytest
import yaml

from tests.alerting.peers import HttpReceiver
from tests.harness import ROOT, RedisServer, wait_for
from tests.services import create_pg_database, docker_available, drop_pg_database, free_port, missing

pytestmark = [pytest.mark.compose, pytest.mark.docker, pytest.mark.slow]

BASE_IMAGE = os.environ.get("DBMON_TEST_BASE_IMAGE", "dbmon-base/bookworm-python:3.11")
SERVICES = ["migrate", "api", "worker", "beat", "watcher"]
WORKERS = int(os.environ.get("DBMON_COMPOSE_WORKERS", "2"))


def _run(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _build_image(tag: str, build_id: str) -> None:
    _run("bash", str(ROOT / ".ci" / "base-image"), BASE_IMAGE, timeout=900)
    # The locked archives, fetched the way the host installs them; the build itself needs no index.
    _run(sys.executable, "-m", "pip", "download", "-q", "--require-hashes", "--no-deps",
         "-r", str(ROOT / "requirements-runtime.lock"), "-d", str(ROOT / "build" / "wheelhouse"))
    _run("docker", "build", "-q", "--network", "host", "--force-rm", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
         "--build-arg", "PIP_NO_INDEX=1", "--build-arg", f"BUILD_ID={build_id}", "-t", tag, str(ROOT), timeout=900)


class Api:
    def __init__(self, port: int, key: str = ""):
        self.base, self.key = f"http://127.0.0.1:{port}", key

    def call(self, method: str, path: str, body: dict | None = None):
        req = urllib.request.Request(self.base + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"X-API-Key": self.key, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # nosec B310: a local http URL
            return json.loads(resp.read())

    def scan(self, kind: str, asset_id: int) -> dict:
        scan_id = self.call("POST", "/api/v1/scans", {"kind": kind, "asset_id": asset_id})["id"]
        return wait_for(lambda: (r := self.call("GET", f"/api/v1/scans/{scan_id}"))["status"] in ("done", "failed")
                        and r, 120, 0.5, f"scan {scan_id}")


def _health(project: str) -> dict[str, str]:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True).stdout.split()
    if not ids:
        return {}
    out = subprocess.run(["docker", "inspect", "--format",
                          '{{index .Config.Labels "com.docker.compose.service"}}/{{.Name}} '
                          '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}', *ids],
                         capture_output=True, text=True).stdout
    return {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines() if line.strip()}


def test_it_runs_the_compose_deployment_end_to_end(tmp_path):
    if not (docker_available() and shutil.which("docker-compose")):
        missing("Docker engine and docker-compose")
    started = time.monotonic()
    build_id = uuid.uuid4().hex[:8]
    tag = f"dbmon:compose-{build_id}"
    project = f"dbmoncompose{uuid.uuid4().hex[:8]}"
    redis = RedisServer(tmp_path / "redis")
    receiver = HttpReceiver()
    store_db = watched_db = None
    compose = ["docker-compose", "-p", project, "-f", str(ROOT / "docker-compose.yml"),
               "-f", str(ROOT / "docker-compose.ci.yml")]
    try:
        _build_image(tag, build_id)
        built = time.monotonic()
        redis.start()
        store_db, store_url = create_pg_database("dbmon_compose")
        watched_db, watched_url = create_pg_database("dbmon_compose_watched")
        cfg = tmp_path / "ci"
        cfg.mkdir()
        (cfg / "dbmon.yaml").write_text(yaml.safe_dump({
            "assets": [{"name": "watched", "engine": "postgresql", "host": "127.0.0.1", "port": 5432,
                        "database": watched_db, "user": "postgres", "sslmode": "disable", "insecure": True}],
            "alerting": {"rules": [{"name": "SchemaChanged", "kind": "event", "event_types": ["schema.changed"]}],
                         "channels": {"ci": {"type": "webhook", "url": receiver.url(), "allow_private_targets": True}},
                         "route": {"channels": ["ci"], "group_wait": "0s"}}}))
        cfg.chmod(0o755)
        (cfg / "dbmon.yaml").chmod(0o644)
        port = free_port()
        env = {**os.environ, "DBMON_IMAGE": tag, "DBMON_SECRET_KEY": uuid.uuid4().hex, "DBMON_API_PORT": str(port),
               "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid), "DBMON_CI_DIR": str(cfg),
               "DBMON_CI_DATABASE_URL": store_url.replace("postgresql://", "postgresql+psycopg2://", 1),
               "DBMON_CI_BROKER_URL": redis.url}

        refused = subprocess.run([*compose, "config", "-q"], env={k: v for k, v in env.items()
                                                                  if k != "DBMON_SECRET_KEY"},
                                 capture_output=True, text=True)
        assert refused.returncode != 0 and "DBMON_SECRET_KEY" in refused.stderr

        _run(*compose, "up", "-d", "--no-build", "--scale", f"worker={WORKERS}", "--scale", "api=2",
             "--scale", "beat=2", "--scale", "watcher=2", *SERVICES, env=env, cwd=tmp_path)
        want = {"api": 2, "worker": WORKERS, "beat": 2, "watcher": 2}

        def all_healthy():
            states = _health(project)
            healthy = [name.split("/")[0] for name, state in states.items() if state == "running healthy"]
            return all(healthy.count(s) == n for s, n in want.items()) and states

        states = wait_for(all_healthy, 180, 1, f"healthy services ({_health(project)})")
        assert any(name.startswith("migrate/") and "exited" in s for name, s in states.items()), states
        up_at = time.monotonic()

        def service_log(service: str) -> str:
            return subprocess.run([*compose, "logs", "--no-color", service], env=env, cwd=tmp_path,
                                  capture_output=True, text=True).stdout

        # Two watchers and two beats: one of each holds the lease, the other waits.
        watchers = wait_for(lambda: (log := service_log("watcher")).count("is a standby") == 1 and log, 60, 1,
                            "a standby watcher")
        assert watchers.count("leads: starting the watch sources") == 1, watchers[-3000:]
        assert service_log("beat").count("beat: Acquired lock") == 1

        key = _run(*compose, "exec", "-T", "api", "dbmon", "apikey", "create", "--role", "operator", "--name", "ci",
                   env=env, cwd=tmp_path).stdout.strip().splitlines()[-1]
        api = Api(port, key)
        asset = wait_for(lambda: next((a for a in api.call("GET", "/api/v1/assets")["items"]
                                       if a["name"] == "watched"), None), 60, 0.5, "the config asset")
        assert api.scan("schema", asset["id"])["status"] == "done"

        with psycopg2.connect(watched_url) as pg, pg.cursor() as cur:
            cur.execute("CREATE TABLE compose_probe (id int PRIMARY KEY, note text)")
        pg.close()
        assert api.scan("schema", asset["id"])["status"] == "done"

        def schema_alert():
            return next((r for r in list(receiver.requests)
                         if any(a["labels"].get("alertname") == "SchemaChanged" for a in r.json()["alerts"])), None)

        try:
            wait_for(schema_alert, 120, 0.5, "the SchemaChanged notification")
        except AssertionError as exc:
            logs = subprocess.run([*compose, "logs", "--tail", "60"], env=env, cwd=tmp_path,
                                  capture_output=True, text=True).stdout
            raise AssertionError(f"no SchemaChanged notification; received {len(receiver.requests)}\n{logs}") from exc
        print(f"\ncompose run: image build {built - started:.0f}s, up and healthy {up_at - built:.0f}s, "
              f"total {time.monotonic() - started:.0f}s")
    finally:
        if "env" in locals():
            subprocess.run([*compose, "down", "-v", "--remove-orphans", "-t", "20"], env=env, cwd=tmp_path,
                           capture_output=True, timeout=300)
        leftover = _health(project)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
        subprocess.run(["docker", "image", "prune", "-f", "--filter", f"label=dbmon.build={build_id}"],
                       capture_output=True)
        receiver.stop()
        redis.stop()
        for name in (store_db, watched_db):
            if name:
                drop_pg_database(name)
    assert not leftover, leftover
