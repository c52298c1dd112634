"""MariaDB for the asset tests: the shared server (no TLS) and private ones started in a temp dir.

A private server is a real `mariadbd` on a free port with a data directory made by
`mariadb-install-db`, TLS from the certificate it is given, and a socket in its directory through
which the test (as root, no password) creates the accounts it needs. It is stopped through the
process this module started, never by name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pymysql

from tests.services import missing

SHARED = {"host": os.environ.get("DBMON_TEST_MYSQL_HOST", "127.0.0.1"),
          "port": int(os.environ.get("DBMON_TEST_MYSQL_PORT", "3306"))}
SHARED_ADMIN = os.environ.get("DBMON_TEST_MYSQL_USER", "root")
SHARED_ADMIN_PASSWORD = os.environ.get("DBMON_TEST_MYSQL_PASSWORD", "")
MARIADBD = shutil.which("mariadbd", path="/usr/sbin:/usr/bin")
INSTALL_DB = shutil.which("mariadb-install-db", path="/usr/bin:/usr/sbin")
# Small files and pool: a private server only answers a handful of logins.
SMALL = ["--innodb-log-file-size=4M", "--innodb-buffer-pool-size=8M", "--skip-name-resolve"]


def shared_admin():
    try:
        return pymysql.connect(**SHARED, user=SHARED_ADMIN, password=SHARED_ADMIN_PASSWORD, connect_timeout=3,
                               autocommit=True)
    except pymysql.MySQLError as exc:
        missing(f"MariaDB/MySQL at {SHARED['host']}:{SHARED['port']} ({exc})")


@contextlib.contextmanager
def throwaway_user(admin, password: str):
    """An account on `admin`'s server that logs in from anywhere with `password`; dropped afterwards."""
    name = f"dbmon_t_{secrets.token_hex(5)}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (password,))
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")


class PrivateMariaDB:
    """`install()` once, then `start()` here or run `command()` elsewhere (in a container)."""

    def __init__(self, directory: Path, port: int, cert: Path, key: Path):
        if not (MARIADBD and INSTALL_DB):
            missing("MariaDB server binaries (mariadbd, mariadb-install-db)")
        self.dir, self.port, self.cert, self.key = directory, port, cert, key
        self.data, self.socket = directory / "data", directory / "mysqld.sock"
        self.proc: subprocess.Popen | None = None

    def install(self) -> "PrivateMariaDB":
        subprocess.run([str(INSTALL_DB), "--no-defaults", f"--datadir={self.data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db", *SMALL],
                       check=True, capture_output=True, timeout=120)
        return self

    def command(self) -> list[str]:
        return [str(MARIADBD), "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--socket={self.socket}", f"--pid-file={self.dir / 'mysqld.pid'}",
                "--user=root", f"--ssl-cert={self.cert}", f"--ssl-key={self.key}", "--innodb-use-native-aio=0",
                f"--log-error={self.dir / 'error.log'}", *SMALL]

    def start(self) -> "PrivateMariaDB":
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.admin().close()
                return
            except pymysql.MySQLError:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"mariadbd exited: {self.log_tail()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd not ready in {timeout}s: {self.log_tail()}") from None
                time.sleep(0.1)

    def admin(self):
        return pymysql.connect(unix_socket=str(self.socket), user="root", password="", connect_timeout=2,
                               autocommit=True)

    def log_tail(self) -> str:
        log = self.dir / "error.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
