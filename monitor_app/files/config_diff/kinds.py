"""The config kinds the diff engine knows, how to tell them from a path, and their parsers and differs."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from . import mysql, pg_hba_diff, pgpass, postgresql, redis_diff
from .model import ParsedBuilder
from .pg_hba import PgHbaParser
from .redis import RedisParser
from .sources import ConfigSources

KINDS = ("postgresql", "pg_hba", "mysql", "redis", "pgpass")


class KindParser(Protocol):
    def parse_text(self, text: str, file: str, directory: str | None, depth: int) -> None: ...

    def finish(self) -> None: ...


ParserFactory = Callable[[ParsedBuilder, ConfigSources, bytes], KindParser]
Differ = Callable[[dict[str, Any], dict[str, Any], dict[str, dict] | None], list[dict[str, Any]]]

PARSERS: dict[str, ParserFactory] = {
    "postgresql": postgresql.PostgresqlParser,
    "pg_hba": PgHbaParser,
    "mysql": mysql.MysqlParser,
    "redis": RedisParser,
    "pgpass": pgpass.PgpassParser,
}

DIFFERS: dict[str, Differ] = {
    "postgresql": postgresql.diff,
    "pg_hba": lambda old, new, _settings: pg_hba_diff.diff(old, new),
    "mysql": lambda old, new, _settings: mysql.diff(old, new),
    "redis": lambda old, new, _settings: redis_diff.diff(old, new),
    "pgpass": lambda old, new, _settings: pgpass.diff(old, new),
}

_POSTGRES_DIR_HINTS = ("postgres", "pgsql", "pgdata")


def guess_kind(path: str) -> str | None:
    """The kind a file's name says it is, or None; never looks at the file itself."""
    name = os.path.basename(path).lower()
    if name in ("postgresql.conf", "postgresql.auto.conf"):
        return "postgresql"
    if name == "pg_hba.conf":
        return "pg_hba"
    if name in (".pgpass", "pgpass", "pgpass.conf"):
        return "pgpass"
    if name.endswith(".cnf"):
        return "mysql"
    if name.startswith("redis") and name.endswith(".conf"):
        return "redis"
    if name.endswith(".conf") and not name.startswith("."):
        parts = os.path.normpath(path).lower().split(os.sep)
        if len(parts) >= 2 and parts[-2] == "conf.d" and any(h in p for p in parts[:-2] for h in _POSTGRES_DIR_HINTS):
            return "postgresql"
    return None
