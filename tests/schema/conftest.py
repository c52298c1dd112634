"""Helpers for schema tests: run DDL on a throwaway PostgreSQL database and diff around it."""

from __future__ import annotations

import psycopg2
import pytest

from monitor_app.schema.diff import diff
from monitor_app.schema.postgres_snapshot import take_snapshot


class PgScratch:
    def __init__(self, url: str):
        self.url = url
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True

    def run(self, *statements: str) -> None:
        with self.conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)

    def snapshot(self) -> dict:
        return take_snapshot(self.url)

    def changes(self, *statements: str, setup: tuple[str, ...] = ()) -> list[dict]:
        """Run `setup`, snapshot, run `statements`, snapshot again, return the diff."""
        self.run(*setup)
        before = self.snapshot()
        self.run(*statements)
        return diff(before, self.snapshot())

    def close(self) -> None:
        self.conn.close()


@pytest.fixture()
def pg(pg_database):
    scratch = PgScratch(pg_database[1])
    yield scratch
    scratch.close()


def one(changes: list[dict], **match) -> dict:
    """The single change matching all given fields; fails listing what there was otherwise."""
    found = [c for c in changes if all(c.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one change matching {match}, got {changes}"
    return found[0]


def brief(changes: list[dict]) -> set[tuple]:
    return {(c["action"], c["object_type"], c["object"]) for c in changes}
