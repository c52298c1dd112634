"""Throwaway MySQL/MariaDB databases for the schema tests and benchmark.

The server is DBMON_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/). Each test module gets
one database with a unique name, dropped at the end; `reset()` empties it between tests by
dropping and creating it again. Without the server a test skips, or fails when CI=true
(`tests.services.missing`).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from click.testing import CliRunner

MYSQL_URL = os.environ.get("DBMON_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")


def admin_connect(database: str | None = None):
    import pymysql

    from tests.services import missing

    parts = urlsplit(MYSQL_URL)
    try:
        return pymysql.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                               user=parts.username or "root", password=parts.password or "", database=database,
                               autocommit=True, connect_timeout=3)
    except pymysql.MySQLError as exc:
        missing(f"MySQL/MariaDB at {parts.hostname}:{parts.port or 3306} ({exc})")
        raise  # unreachable: missing() skips or fails


class MysqlScratch:
    """One throwaway database: run DDL on it, snapshot it, diff around statements."""

    def __init__(self, prefix: str = "dbmon_t"):
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        base = MYSQL_URL.rstrip("/")
        self.dsn = f"{base}/{self.name}"
        self.admin = admin_connect()
        self.reset()

    def reset(self) -> None:
        with self.admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
            cur.execute(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        self.conn = admin_connect(self.name)

    def run(self, *statements: str) -> None:
        with self.conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)

    def value(self, sql: str):
        with self.conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
            return row[0] if row else None

    def snapshot(self) -> dict:
        from monitor_app.schema.mysql_snapshot import take_snapshot

        return take_snapshot(self.dsn)

    def changes(self, *statements: str, setup: tuple[str, ...] = ()) -> list[dict]:
        """Run `setup`, snapshot to a file, run `statements`, then diff through the CLI both ways a
        live server allows (file/file and file/DSN; no copy of a database keeps its table ids) and
        require one answer."""
        import tempfile

        self.run(*setup)
        self.analyze()
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            old_file = save(self.dsn, folder / "old.json")
            self.run(*statements)
            self.analyze()
            new_file = save(self.dsn, folder / "new.json")
            mentioned = " ".join((*setup, *statements))
            answers = []
            for exit_code, text in (cli_diff(old_file, new_file), cli_diff(old_file, self.dsn)):
                records = json.loads(text)
                assert exit_code == (1 if records else 0), text
                answers.append(own_records(records, mentioned))
            assert answers[0] == answers[1], f"file/DSN differs from file/file:\n{answers[1]}\n---\n{answers[0]}"
            return answers[0]

    def analyze(self) -> None:
        """Fresh row estimates for the rubric, as ANALYZE does on PostgreSQL."""
        tables = [r[0] for r in self.fetch("SELECT TABLE_NAME FROM information_schema.TABLES "
                                           f"WHERE TABLE_SCHEMA = '{self.name}' AND TABLE_TYPE = 'BASE TABLE'")]
        if tables:
            self.fetch("ANALYZE TABLE " + ", ".join(f"`{t}`" for t in tables))

    def fetch(self, sql: str) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def drop(self) -> None:
        with self.admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        self.conn.close()
        self.admin.close()


def own_records(records: list[dict], mentioned: str = "") -> list[dict]:
    """Change records without accounts this test did not name. An account with a privilege on *.*
    is in every database's snapshot, so one that a test elsewhere on the shared server creates or
    drops meanwhile (tests/metrics grant global privileges) would show in this test's diff."""
    return [r for r in records if r["object_type"] != "user" or r["object"] in mentioned]


def save(dsn: str, path: Path) -> str:
    from monitor_app.schema.snapshot import take_snapshot
    from monitor_app.schema.snapshot_format import dump

    path.write_text(dump(take_snapshot(dsn)) + "\n")
    return str(path)


def cli_diff(old: str, new: str) -> tuple[int, str]:
    from monitor_app.cli.main import cli

    result = CliRunner().invoke(cli, ["schema", "diff", old, new, "--format", "json"], catch_exceptions=False)
    return result.exit_code, result.output


def build_schema(run, tables: int = 200) -> None:
    """A schema like an application's: `tables` tables with a key, a foreign key to the previous
    table, an index, a CHECK and a comment; a view, a function and a trigger every tenth table."""
    for i in range(tables):
        ref = f", parent_id int NULL, CONSTRAINT t{i}_parent FOREIGN KEY (parent_id) REFERENCES t{i - 1} (id)" if i else ""
        run(f"CREATE TABLE t{i} (id int NOT NULL PRIMARY KEY, name varchar(80) NOT NULL, "
            f"created_at timestamp NOT NULL DEFAULT current_timestamp(), amount decimal(12,2) CHECK (amount >= 0), "
            f"note text{ref}, KEY t{i}_name (name)) COMMENT 'table {i}'")
        if i % 10 == 0:
            run(f"CREATE VIEW v{i} AS SELECT id, name FROM t{i}",
                f"CREATE FUNCTION f{i}(x int) RETURNS int DETERMINISTIC RETURN x + {i}",
                f"CREATE TRIGGER tr{i} BEFORE INSERT ON t{i} FOR EACH ROW SET NEW.name = trim(NEW.name)")


def numbers(count: int) -> str:
    """A derived table `n` of 1..count, portable to MySQL and MariaDB (no sequence engine)."""
    digits = "(SELECT 0 AS d UNION ALL " + " UNION ALL ".join(f"SELECT {i}" for i in range(1, 10)) + ")"
    places = max(1, len(str(count - 1)))
    expression = " + ".join(f"{10 ** p} * p{p}.d" for p in range(places))
    joined = ", ".join(f"{digits} AS p{p}" for p in range(places))
    return f"(SELECT {expression} + 1 AS n FROM {joined}) AS numbers WHERE n <= {count}"
