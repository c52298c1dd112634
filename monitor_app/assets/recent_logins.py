"""One login answers the reachability of every database a role may enter on a server, for a while.

Probing a thousand databases of one server every 30 s would be a thousand logins (and a
thousand server processes forked) per interval, all through the server's small connection
budget. A probe that logs in also reads which databases that role may connect to
(`datallowconn` and the CONNECT privilege); for `ttl` seconds, a probe of another of those
databases with the same server, role, TLS settings and password counts as up without
connecting. A database not in the list, or a login that failed, means a real login again; so
a server that went down is seen at most `ttl` seconds later than by logging in each time.

Not seen this way: a `pg_hba.conf` line that refuses only some databases, a database's own
connection limit, and per-database settings that break a login. Passwords are kept only as
an HMAC under a key that lives in this process's memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from monitor_app.assets.connection_budget import server_key

# Servers and roles remembered at once, the least recently used forgotten first.
MAX_ENTRIES = 1024
DATABASES_SQL = ("SELECT current_setting('server_version'), array(SELECT datname::text FROM pg_catalog.pg_database "
                 "WHERE datallowconn AND pg_catalog.has_database_privilege(oid, 'CONNECT'))")


@dataclass(frozen=True)
class Login:
    at: float
    databases: frozenset[str]
    server_version: str
    latency_ms: float


class RecentLogins:
    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES):
        self.ttl, self.max_entries = ttl, max_entries
        self._key = os.urandom(32)
        self._entries: OrderedDict[tuple, Login] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, connection: dict, password: str | None) -> tuple:
        secret = hmac.new(self._key, (password or "").encode(), hashlib.sha256).hexdigest()
        return (server_key(connection), connection.get("user"), connection.get("sslmode"),
                connection.get("sslrootcert"), secret)

    def lookup(self, key: tuple, database: str) -> Login | None:
        with self._lock:
            login = self._entries.get(key)
            if login is None or time.monotonic() - login.at > self.ttl or database not in login.databases:
                return None
            self._entries.move_to_end(key)
            return login

    def remember(self, key: tuple, databases: list[str], server_version: str, latency_ms: float) -> None:
        with self._lock:
            self._entries[key] = Login(time.monotonic(), frozenset(databases), server_version, latency_ms)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, key: tuple) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
