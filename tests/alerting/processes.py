"""Real dbmon worker and beat processes for end-to-end tests and benchmarks, in either
mode: embedded (filesystem broker, SQLite) or distributed (a private Redis, PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.services import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]


class PrivateRedis:
    """A throwaway redis-server on a free port, so tests never touch a shared instance."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dbmon-redis-")
        self.port = free_port()
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self) -> None:
        """Kill and start again: without persistence, every queued message is gone."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Deployment:
    """Writes a config file and env for one data directory and runs dbmon processes on it."""

    def __init__(self, data_dir: Path, database_url: str, alerting: dict, broker_url: str | None = None,
                 **settings: str):
        self.data_dir = data_dir
        self.config_file = data_dir / "dbmon.yaml"
        self.config_file.write_text(yaml.safe_dump({"alerting": alerting}))
        self.env = {**os.environ, "DBMON_DATA_DIR": str(data_dir), "DBMON_DATABASE_URL": database_url,
                    "DBMON_CONFIG_FILE": str(self.config_file), "DBMON_SECRET_KEY": "e2e-secret",
                    "DBMON_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        self.env["DBMON_BROKER_URL"] = broker_url or ""
        for key, value in settings.items():
            self.env[f"DBMON_{key.upper()}"] = str(value)
        self.procs: dict[str, subprocess.Popen] = {}

    def settings(self):
        from monitor_app.settings import Settings

        overrides = {k.removeprefix("DBMON_").lower(): v for k, v in self.env.items()
                     if k.startswith("DBMON_") and v != ""}
        return Settings(**overrides)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.data_dir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "monitor_app.cli.main", *args], cwd=ROOT, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> subprocess.Popen:
        return self.start(name, "worker", "-Q", "alerts,maintenance", "-c", str(concurrency), "-n", f"{name}@%h")

    def start_beat(self) -> subprocess.Popen:
        return self.start("beat", "beat")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill(name)
            self.procs.pop(name, None)
