"""MariaDB servers for the MySQL metrics tests: a throwaway database and account on the shared
server (127.0.0.1:3306), and private servers (Debian's mariadbd) in a temp dir on a free port of
127.0.0.1, each stopped by its own pid."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.services import free_port, missing, port_open

SHARED_HOST, SHARED_PORT = os.environ.get("DBMON_TEST_MYSQL_HOST", "127.0.0.1"), 3306
MARIADBD = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")


def admin_connect(host: str = SHARED_HOST, port: int = SHARED_PORT, **kwargs):
    import pymysql

    try:
        return pymysql.connect(host=host, port=port, user="root", password="", autocommit=True, connect_timeout=3,
                               **kwargs)
    except pymysql.err.MySQLError as exc:
        missing(f"MariaDB at {host}:{port} as root ({exc})")
        raise  # unreachable: missing() fails or skips


def asset_connection(port: int, user: str, database: str | None = None, **extra) -> dict:
    """An asset's `connection` for a test server, which speaks no TLS unless `extra` says so."""
    return {"host": "127.0.0.1", "port": port, "database": database or "mysql", "user": user,
            "ssl": "disable", "insecure": True, **extra}


class Account:
    """A database and a user with a password on a server, both dropped by `drop`."""

    def __init__(self, port: int = SHARED_PORT, *, grants: tuple[str, ...] = ("PROCESS", "REPLICATION CLIENT",
                                                                              "SLAVE MONITOR")):
        self.port = port
        self.name = f"dbmon_t_{uuid.uuid4().hex[:10]}"
        self.password = uuid.uuid4().hex
        admin = admin_connect(port=port)
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.name}`")
            cur.execute(f"CREATE USER '{self.name}'@'127.0.0.1' IDENTIFIED BY %s", (self.password,))
            cur.execute(f"GRANT ALL ON `{self.name}`.* TO '{self.name}'@'127.0.0.1'")
            for grant in grants:
                try:  # SLAVE MONITOR is MariaDB 10.5+; REPLICATION CLIENT is MySQL's name for it
                    cur.execute(f"GRANT {grant} ON *.* TO '{self.name}'@'127.0.0.1'")
                except Exception:  # noqa: BLE001 - a privilege this server does not know
                    pass
        admin.close()

    def connection(self, **extra) -> dict:
        return asset_connection(self.port, self.name, self.name, **extra)

    def connect(self):
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user=self.name, password=self.password,
                               database=self.name, autocommit=True)

    def drop(self) -> None:
        admin = admin_connect(port=self.port)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
            cur.execute(f"DROP USER IF EXISTS '{self.name}'@'127.0.0.1'")
        admin.close()


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it, and a second CA that signed nothing."""
    if not shutil.which("openssl"):
        missing("openssl, to make test certificates")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    files = {k: directory / f"{k}.pem" for k in ("ca", "ca_key", "other_ca", "other_ca_key", "cert", "key", "csr")}

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    for ca, key in (("ca", "ca_key"), ("other_ca", "other_ca_key")):
        run("req", "-x509", *ec, "-keyout", str(files[key]), "-out", str(files[ca]), "-days", "2",
            "-subj", f"/CN=dbmon test {ca}")
    run("req", *ec, "-keyout", str(files["key"]), "-out", str(files["csr"]), "-subj", "/CN=127.0.0.1")
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(files["csr"]), "-CA", str(files["ca"]), "-CAkey", str(files["ca_key"]),
        "-CAcreateserial", "-out", str(files["cert"]), "-days", "2", "-extfile", str(directory / "san.cnf"))
    return files


class PrivateMariaDB:
    """A MariaDB server of its own: `performance_schema` and the rest as asked."""

    def __init__(self, *, performance_schema: bool = True, server_id: int = 1, log_bin: bool = False,
                 tls: dict[str, Path] | None = None):
        if not (MARIADBD.exists() and INSTALL_DB.exists()):
            missing(f"{MARIADBD} and {INSTALL_DB} (apt-get install mariadb-server)")
        self.root = Path(tempfile.mkdtemp(prefix="dbmon-mariadb-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.options = [f"--performance-schema={'ON' if performance_schema else 'OFF'}", f"--server-id={server_id}"]
        if log_bin:
            self.options += [f"--log-bin={self.root}/binlog", "--binlog-format=ROW"]
        if tls:
            self.options += [f"--ssl-ca={tls['ca']}", f"--ssl-cert={tls['cert']}", f"--ssl-key={tls['key']}"]

    def start(self) -> None:
        data = self.root / "data"
        subprocess.run([str(INSTALL_DB), "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        self.proc = subprocess.Popen(
            [str(MARIADBD), "--no-defaults", f"--datadir={data}", f"--socket={self.root}/sock", f"--port={self.port}",
             "--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve", "--innodb-buffer-pool-size=16M",
             "--innodb-log-file-size=8M", f"--log-error={self.root}/error.log", f"--pid-file={self.root}/pid",
             *self.options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.error_log()
                self.stop()
                raise AssertionError(f"mariadbd did not start: {log[-2000:]}")
            time.sleep(0.05)

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def connect(self, **kwargs):
        return admin_connect(port=self.port, **kwargs)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a clean shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def add_mysql_asset(rt, connection: dict, password: str | None = None, *, name: str = "orders-mysql",
                    engine: str = "mariadb") -> int:
    from monitor_app.store.models import Asset

    with rt.store.session() as s:
        asset = Asset(kind="database", engine=engine, name=name, source="config", external_id=name, labels={},
                      connection=connection, details={}, status="up",
                      secret=rt.credentials.seal({"password": password}) if password is not None else None)
        s.add(asset)
        s.flush()
        return asset.id


def values_at(store, asset_id: int, at) -> dict[str, float]:
    """Every sample the asset got at `at`, by metric name (labels left out)."""
    from sqlalchemy import select

    from monitor_app.store.models import MetricPoint, MetricSeries

    with store.session() as s:
        return dict(s.execute(select(MetricSeries.name, MetricPoint.value)
                              .join(MetricPoint, MetricPoint.series_id == MetricSeries.id)
                              .where(MetricSeries.asset_id == asset_id, MetricPoint.at == at)).all())


def event_types(store, prefix: str) -> list[str]:
    from sqlalchemy import select

    from monitor_app.store.models import Event

    with store.session() as s:
        return list(s.scalars(select(Event.type).where(Event.type.like(f"{prefix}%")).order_by(Event.id)))
