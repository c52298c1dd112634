"""A real dbmon deployment for integration tests: store, broker and worker processes.

`embedded`: SQLite + filesystem broker in a temp dir. `distributed`: a throwaway
PostgreSQL database + a private redis-server on a free port (so it can be
restarted without disturbing anything else).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.services import create_pg_database, drop_pg_database, free_port, missing, port_open

ROOT = Path(__file__).resolve().parent.parent

FAST_TIMINGS = {
    "DBMON_FILESYSTEM_POLLING_INTERVAL": "0.05",
    "DBMON_TASK_LEASE_SECONDS": "3",
    "DBMON_TASK_QUEUED_GRACE": "4",
    "DBMON_REDELIVER_INTERVAL": "1",
    "DBMON_BROKER_VISIBILITY_TIMEOUT": "30",
    "DBMON_HOST_SAMPLE_INTERVAL": "3600",
    "DBMON_REACHABILITY_INTERVAL": "3600",
    "DBMON_PROBE_TIMEOUT": "4",
    "DBMON_WORKER_CONCURRENCY": "2",
    "DBMON_LOG_LEVEL": "INFO",
}


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    def __init__(self, workdir: Path):
        if not shutil.which("redis-server"):
            missing("redis-server binary")
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open("127.0.0.1", self.port), 10, what="redis-server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class Deployment:
    def __init__(self, mode: str, tmp: Path, extra_env: dict | None = None):
        self.mode = mode
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.redis: RedisServer | None = None
        self.pg_name: str | None = None
        self.config_file = tmp / "dbmon.yaml"
        self.env = {**os.environ, **FAST_TIMINGS, "PYTHONPATH": str(ROOT),
                    # Subprocesses run in the temp dir; their coverage data must land beside the parent's.
                    "COVERAGE_FILE": str(ROOT / ".coverage"),
                    "DBMON_DATA_DIR": str(tmp / "var"), "DBMON_CONFIG_FILE": str(self.config_file),
                    "DBMON_SECRET_KEY": "test-secret-key"}
        for key in ("DBMON_DATABASE_URL", "DBMON_BROKER_URL"):
            self.env.pop(key, None)
        if mode == "distributed":
            self.redis = RedisServer(tmp / "redis")
            self.redis.start()
            self.pg_name, url = create_pg_database("dbmon_deploy")
            self.env["DBMON_DATABASE_URL"] = url.replace("postgresql://", "postgresql+psycopg2://", 1)
            self.env["DBMON_BROKER_URL"] = self.redis.url
        self.env.update(extra_env or {})
        self._runtime = None

    # -- settings and store -------------------------------------------------
    def settings(self):
        from monitor_app.config.settings import Settings

        env = {k[len("DBMON_"):].lower(): v for k, v in self.env.items() if k.startswith("DBMON_")}
        return Settings(_env_file=None, **{k: v for k, v in env.items() if k in Settings.model_fields})

    @property
    def runtime(self):
        if self._runtime is None:
            from monitor_app.platform.runtime import Runtime
            from workers.celery_app import make_celery

            settings = self.settings()
            celery = make_celery(settings)

            def send(name, kwargs, run_id, queue):
                celery.send_task(name, kwargs=kwargs, task_id=run_id, queue=queue, routing_key=queue)

            self._runtime = Runtime(settings, sender=send)
            self._celery = celery
        return self._runtime

    def migrate(self) -> None:
        from monitor_app.store.migrate import upgrade

        upgrade(self.settings().resolved_database_url)

    def write_config(self, text: str) -> None:
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_file)

    # -- processes ----------------------------------------------------------
    def cli(self, *args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monitor_app.cli.main", *args], env=self.env, cwd=self.tmp,
                              capture_output=True, text=True, timeout=timeout, check=check)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen([sys.executable, "-m", "monitor_app.cli.main", *args], env=self.env, cwd=self.tmp,
                                stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str = "worker", *extra: str) -> subprocess.Popen:
        proc = self.start(name, "worker", "-n", f"{name}-{os.getpid()}@test", *extra)
        wait_for(lambda: "ready." in self.log(name) or proc.poll() is not None, 60, what=f"{name} ready")
        assert proc.poll() is None, self.log(name)
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group: a dead machine takes the pool children with it."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def log(self, name: str) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    def scan(self, task: str, kwargs: dict | None = None, timeout: float = 30.0):
        """Dispatch like the API does and wait for the run to finish."""
        run_id = self.runtime.dispatch(task, kwargs or {}, requested_by="test")
        return self.wait_run(run_id, timeout)

    def wait_run(self, run_id: str, timeout: float = 30.0):
        return wait_for(lambda: (r := self.runtime.ledger.get(run_id)) and r.status in ("done", "failed") and r,
                        timeout, what=f"run {run_id}")

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)
        if self._runtime is not None:
            self._runtime.close()
        if self.redis:
            self.redis.stop()
        if self.pg_name:
            drop_pg_database(self.pg_name)
