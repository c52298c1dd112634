"""Private PostgreSQL clusters (posture tests, the unit tier), run as the `postgres` OS user.

An "exposed" cluster listens on every address, but inside its own empty network namespace
(`unshare --net`), so the test machine exposes nothing; dbmon reaches it over its Unix socket.
Every cluster is stopped by its postmaster's pid, whatever the test's outcome.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
from psycopg2.extensions import make_dsn

from tests.services import free_port, missing

PG_BIN = Path(os.environ.get("DBMON_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(*argv: str, isolated: bool = False) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", "postgres", "--", *argv]
    if isolated:
        cmd = ["unshare", "--net", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting for its reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class PrivateCluster:
    def __init__(self, *, superuser_password: str | None = None, bin_dir: Path | None = None):
        self.bin = bin_dir or PG_BIN
        if not (self.bin / "initdb").exists() or not shutil.which("runuser"):
            missing(f"PostgreSQL server binaries in {self.bin} and runuser")
        if os.geteuid() != 0:
            missing("root, to run a private cluster as the postgres user")
        self.root = Path(tempfile.mkdtemp(prefix="dbmon-posture-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self.password = superuser_password
        self.pid: int | None = None
        args = [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--no-sync"]
        if superuser_password:
            pwfile = self.root / "pw"
            pwfile.write_text(superuser_password)
            shutil.chown(pwfile, "postgres", "postgres")
            args += ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["-A", "trust"]
        done = _as_postgres(*args)
        assert done.returncode == 0, done.stderr

    def write_hba(self, text: str) -> None:
        (self.data / "pg_hba.conf").write_text(text)

    def start(self, *, listen: str, isolated: bool = False, **settings: str) -> None:
        options = [f"-p {self.port}", f"-k {self.root}", f"-c listen_addresses='{listen}'"]
        options += [f"-c {k}={v}" for k, v in settings.items()]
        done = _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                            "-t", "60", "start", "-o", " ".join(options), isolated=isolated)
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():
            self.pid = int(pidfile.read_text().splitlines()[0])
        assert done.returncode == 0, done.stderr + (self.root / "log").read_text(errors="replace")

    def connect(self, user: str = "postgres", password: str | None = None, database: str = "postgres"):
        conn = psycopg2.connect(self.dsn(user, password, database))
        conn.autocommit = True
        return conn

    def dsn(self, user: str = "postgres", password: str | None = None, database: str = "postgres") -> str:
        params = dict(host=str(self.root), port=self.port, dbname=database, user=user)
        if password or (user == "postgres" and self.password):
            params["password"] = password or self.password
        return make_dsn(**params)

    def connection(self, user: str = "postgres") -> dict:
        """An asset's `connection` for this cluster (over its Unix socket)."""
        return {"host": str(self.root), "port": self.port, "database": "postgres", "user": user,
                "sslmode": "disable", "insecure": True}

    def run(self, *statements: str, database: str = "postgres") -> None:
        conn = self.connect(database=database)
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
        finally:
            conn.close()

    def pgbench_command(self, *args: str) -> list[str]:
        """pgbench against this cluster's `postgres` database as its superuser. PostgreSQL 15's
        client, whatever the server: the other majors' builds carry only the server."""
        return [str(PG_BIN / "pgbench"), "-h", str(self.root), "-p", str(self.port), "-U", "postgres", *args, "postgres"]

    def server_version_num(self) -> int:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_setting('server_version_num')::int")
                return cur.fetchone()[0]
        finally:
            conn.close()

    def stop(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)  # fast shutdown
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and _alive(self.pid):
                    time.sleep(0.1)
                if _alive(self.pid):
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.root, ignore_errors=True)
