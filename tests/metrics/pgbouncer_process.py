"""A real PgBouncer (Debian's package) for tests, run as the `postgres` OS user on a free port of
127.0.0.1, in front of the test PostgreSQL server; stopped by its own pid."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.services import free_port, missing, port_open

PGBOUNCER = Path("/usr/sbin/pgbouncer")


class PgBouncer:
    def __init__(self, databases: dict[str, str], *, pool_size: int = 1, users: tuple[str, ...] = ("postgres",
                                                                                                      "stats", "app")):
        if not PGBOUNCER.exists():
            missing("pgbouncer (apt-get install pgbouncer)")
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            missing("root and setpriv, to run pgbouncer as the postgres user")
        self.root = Path(tempfile.mkdtemp(prefix="dbmon-pgbouncer-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        (self.root / "users.txt").write_text("".join(f'"{u}" ""\n' for u in users))
        dbs = "".join(f"{name} = {spec}\n" for name, spec in databases.items())
        (self.root / "pgbouncer.ini").write_text(
            f"[databases]\n{dbs}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir =\nauth_type = trust\nauth_file = {self.root}/users.txt\nadmin_users = postgres\n"
            f"stats_users = stats\npool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            f"max_client_conn = 50\nlogfile = {self.root}/pgbouncer.log\nignore_startup_parameters = options\n")
        shutil.chown(self.root, "postgres", "postgres")
        for f in self.root.iterdir():
            shutil.chown(f, "postgres", "postgres")

    @property
    def command(self) -> list[str]:
        """PgBouncer's command line; every path it reads is absolute (under `root`)."""
        return [str(PGBOUNCER), str(self.root / "pgbouncer.ini")]

    def start(self) -> None:
        # setpriv execs pgbouncer in place: the pid we hold is PgBouncer's own.
        self.proc = subprocess.Popen(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                                      *self.command], cwd=self.root,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "pgbouncer.log").read_text(errors="replace") if (self.root / "pgbouncer.log").exists() else ""
                self.stop()
                raise AssertionError(f"pgbouncer did not start: {log[-2000:]}")
            time.sleep(0.05)

    def connection(self, user: str = "stats") -> dict:
        """An asset's `connection` for the admin console."""
        return {"host": "127.0.0.1", "port": self.port, "database": "pgbouncer", "user": user, "sslmode": "disable",
                "insecure": True}

    def dsn(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
