"""Throwaway PostgreSQL databases (and the roles that own them) dropped on a background thread.

DROP DATABASE waits for a checkpoint of the whole shared server (seconds while others run tests
on it); no test needs to wait for its scratch database to disappear, only the session does.
"""

from __future__ import annotations

import queue
import threading

from tests.services import drop_pg_database, pg_admin_connect

THREADS = 4


class DeferredDrops:
    def __init__(self):
        self._names: queue.Queue[tuple[str, str | None] | None] = queue.Queue()
        self._failures: list[str] = []
        # Several at once: drops waiting together share one checkpoint instead of queueing for one each.
        self._threads = [threading.Thread(target=self._run, name=f"deferred-drops-{i}", daemon=True)
                         for i in range(THREADS)]
        for thread in self._threads:
            thread.start()

    def drop(self, name: str, owner: str | None = None) -> None:
        """Drop database `name`, then its owning role `owner` if given."""
        self._names.put((name, owner))

    def _run(self) -> None:
        while (item := self._names.get()) is not None:
            name, owner = item
            try:
                drop_pg_database(name)
                if owner:
                    conn = pg_admin_connect()
                    with conn.cursor() as cur:
                        cur.execute(f"DROP ROLE IF EXISTS {owner}")
                    conn.close()
            except BaseException as exc:  # noqa: BLE001 - pytest's skip/fail outcomes are BaseExceptions too
                self._failures.append(f"{name}: {exc}")

    def close(self) -> None:
        """Wait for every drop; a database left behind fails the session instead of going unnoticed."""
        for _ in self._threads:
            self._names.put(None)
        for thread in self._threads:
            thread.join()
        assert not self._failures, f"throwaway databases not dropped: {self._failures}"
