"""Real dbmon processes (watcher with the docker source, a discovery worker, optionally beat).

`embedded`: SQLite store and filesystem broker in a temp dir. `distributed`: a throwaway
PostgreSQL database and a private redis-server on a free port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.containers.conftest import wait_for
from tests.services import create_pg_database, drop_pg_database, free_port, missing, port_open

ROOT = Path(__file__).resolve().parents[2]
FAST = {"DBMON_FILESYSTEM_POLLING_INTERVAL": "0.02", "DBMON_REDELIVER_INTERVAL": "1",
        "DBMON_REACHABILITY_INTERVAL": "3600", "DBMON_HOST_SAMPLE_INTERVAL": "3600", "DBMON_LOG_LEVEL": "INFO",
        "DBMON_WORKER_CONCURRENCY": "2"}


class Deployment:
    def __init__(self, tmp: Path, config: str = "", mode: str = "embedded"):
        self.tmp, self.mode = tmp, mode
        (tmp / "dbmon.yaml").write_text(config)
        self.env = {**os.environ, **FAST, "PYTHONPATH": str(ROOT), "DBMON_DATA_DIR": str(tmp / "var"),
                    "DBMON_CONFIG_FILE": str(tmp / "dbmon.yaml"), "DBMON_SECRET_KEY": "test-secret-key"}
        for key in ("DBMON_DATABASE_URL", "DBMON_BROKER_URL"):
            self.env.pop(key, None)
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis: subprocess.Popen | None = None
        self.pg_name: str | None = None
        self.store_url = f"sqlite:///{(tmp / 'var' / 'dbmon.sqlite3').resolve()}"
        if mode == "distributed":
            self._start_redis()
            self.pg_name, url = create_pg_database("dbmon_containers")
            self.store_url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
            self.env["DBMON_DATABASE_URL"] = self.store_url
        self.cli("db", "upgrade", check=True)
        self._store = None

    def _start_redis(self) -> None:
        if not shutil.which("redis-server"):
            missing("redis-server binary")
        port = free_port()
        self.redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(self.tmp)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open("127.0.0.1", port), 10)
        self.env["DBMON_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"

    @property
    def store(self):
        if self._store is None:
            from monitor_app.store import Store

            self._store = Store(self.store_url)
        return self._store

    def cli(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monitor_app.cli.main", *args], env=self.env, cwd=self.tmp,
                              capture_output=True, text=True, timeout=timeout, check=check)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, name: str, *args: str, ready: str | None = None) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "monitor_app.cli.main", *args], env=self.env, cwd=self.tmp,
                                stdout=open(self.tmp / f"{name}.log", "ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        if ready:
            wait_for(lambda: ready in self.log(name) or proc.poll() is not None, 60)
            assert proc.poll() is None, self.log(name)
        return proc

    def start_worker(self) -> None:
        self.start("worker", "worker", "-Q", "discovery", "-c", "2", "-n", f"containers-{os.getpid()}@test",
                   ready="ready.")

    def start_beat(self) -> None:
        self.start("beat", "beat")

    def start_watcher(self) -> None:
        self.start("watcher", "watcher", "--source", "docker", ready="following docker events")

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        if self._store is not None:
            self._store.dispose()
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait()
        if self.pg_name:
            drop_pg_database(self.pg_name)
