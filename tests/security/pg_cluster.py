"""A private PostgreSQL cluster with TLS and SCRAM, run as the postgres user in its own directory."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.security.tls_material import TestCA
from tests.services import free_port, missing

SUPERUSER_PASSWORD = "cluster-admin-pw"


def pg_bindir() -> str | None:
    root = Path("/usr/lib/postgresql")
    found = sorted(root.glob("*/bin/initdb")) if root.exists() else []
    return str(found[-1].parent) if found else None


class TlsCluster:
    """ssl=on with a certificate from `ca`; every TCP login is SCRAM unless `hba` says otherwise."""

    def __init__(self, hba_lines: list[str] = ()):
        self.bindir = pg_bindir()
        if self.bindir is None:
            missing("PostgreSQL server binaries under /usr/lib/postgresql")
        try:
            self._pg = pwd.getpwnam("postgres")
        except KeyError:
            missing("a postgres system user")
        self.dir = Path(tempfile.mkdtemp(prefix="dbmon-tlspg-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.ca = TestCA(self.dir / "ca")
        self.hba_lines = list(hba_lines)
        self.pid: int | None = None

    def _as_postgres(self, *argv: str, timeout: float = 120) -> None:
        subprocess.run(list(argv), check=True, capture_output=True, user=self._pg.pw_uid, group=self._pg.pw_gid,
                       cwd=self.dir, timeout=timeout)

    def start(self) -> "TlsCluster":
        data = self.dir / "data"
        os.chown(self.dir, self._pg.pw_uid, self._pg.pw_gid)
        pwfile = self.dir / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD)
        os.chown(pwfile, self._pg.pw_uid, self._pg.pw_gid)
        self._as_postgres(f"{self.bindir}/initdb", "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
                          "--auth-local=trust", "--auth-host=scram-sha-256")
        server = self.ca.issue("server", dns=("localhost",), ips=("127.0.0.1",))
        for f in (server.cert, server.key):
            shutil.copy(f, data / f.name)
            os.chown(data / f.name, self._pg.pw_uid, self._pg.pw_gid)
            os.chmod(data / f.name, 0o600)
        hba = data / "pg_hba.conf"
        hba.write_text("\n".join(["local all all trust", *self.hba_lines,
                                  "host all all 127.0.0.1/32 scram-sha-256"]) + "\n")
        self._as_postgres(f"{self.bindir}/pg_ctl", "-D", str(data), "-l", str(self.dir / "log"), "-w", "start", "-o",
                          f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c ssl=on "
                          f"-c ssl_cert_file=server.crt -c ssl_key_file=server.key -c max_connections=30")
        self.pid = int((data / "postmaster.pid").read_text().split()[0])
        return self

    def psql(self, sql: str) -> None:
        self._as_postgres(f"{self.bindir}/psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                          "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql, timeout=30)

    def stop(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)  # fast shutdown of the postmaster we started
                for _ in range(200):
                    os.kill(self.pid, 0)
                    __import__("time").sleep(0.05)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.dir, ignore_errors=True)
