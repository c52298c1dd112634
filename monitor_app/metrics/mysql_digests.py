"""Statement digests of `performance_schema.events_statements_summary_by_digest`, ranked by the
time they took in the interval since the last read, not since the server started: a statement
that was heavy last week does not hide the one that is heavy now.

A read asks for the digests run since the previous read (`LAST_SEEN`), the `tracked` with the
most time, and keeps their counters in the poll state (with those of earlier reads, up to
`tracked` in all, most recently read first: a statement run every few minutes still has its
baseline when it runs again). A digest's interval is its counters less the kept ones; a digest
with none kept counts from zero only when it first appeared after the previous read (its
`FIRST_SEEN`; MariaDB keeps it to the second, so one made in the same second as that read and
missed by it counts that second's calls too). Anything else waits for the next read. Counters
that went back (the table was truncated, the entry evicted and made again) drop that digest's
interval, and a server restart drops all.

Statements about the server itself (SHOW, SET, `SELECT @@…`, reads of information_schema and
performance_schema) are left out: they are dbmon's own and other monitors'. Times are in
picoseconds on both engines.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor_app.metrics.pg_reading import finite, label, text_label

DIGESTS_SQL = ("SELECT SCHEMA_NAME, DIGEST, LEFT(DIGEST_TEXT, 300), COUNT_STAR, SUM_TIMER_WAIT, SUM_ROWS_SENT, "
               "SUM_ROWS_EXAMINED, UNIX_TIMESTAMP(FIRST_SEEN) "
               "FROM performance_schema.events_statements_summary_by_digest "
               "WHERE DIGEST IS NOT NULL AND LAST_SEEN >= FROM_UNIXTIME(%s) "
               "AND DIGEST_TEXT NOT LIKE 'SHOW %%' AND DIGEST_TEXT NOT LIKE 'SET %%' "
               "AND DIGEST_TEXT NOT LIKE 'SELECT @@%%' AND DIGEST_TEXT NOT LIKE '%%performance_schema%%' "
               "AND DIGEST_TEXT NOT LIKE '%%information_schema%%' "
               "ORDER BY SUM_TIMER_WAIT DESC LIMIT %s")
# FROM_UNIXTIME of a time before 1970 in the session's zone is NULL: the first read starts here.
EARLIEST = 86400.0
PICOSECONDS = 1e12
DIGEST_CHARS = 32  # MariaDB's digests are 32 hex digits, MySQL 8's 64: the first 32 identify either


@dataclass(frozen=True)
class Digest:
    key: str
    schema: str
    digest: str
    text: str
    counts: tuple[float, float, float, float]  # calls, picoseconds, rows sent, rows examined
    first_seen: float | None


def since(previous: dict | None) -> float:
    """The server time a read asks for digests run after: a second before the last read, so a
    statement that ran while it did is not missed."""
    at = finite((previous or {}).get("at"))
    return max(EARLIEST, at - 1) if at is not None else EARLIEST


def parse(rows) -> list[Digest]:
    """Rows of DIGESTS_SQL; a row with a value that is not a number is skipped."""
    out = []
    for row in list(rows or ()):
        if not isinstance(row, (tuple, list)) or len(row) < 8:
            continue
        counts = tuple(finite(v) for v in row[3:7])
        if any(c is None or c < 0 for c in counts):
            continue
        schema, digest = label(row[0] if row[0] is not None else "none"), str(row[1])[:DIGEST_CHARS]
        # Identifiers come back-quoted in a digest's text: the quotes would read as `_` in a label.
        text = text_label(str(row[2] if row[2] is not None else "").replace("`", ""))
        out.append(Digest(f"{schema}/{digest}", schema, label(digest), text, counts,  # type: ignore[arg-type]
                          finite(row[7])))
    return out


def rank(found: list[Digest], previous: dict | None, server_now: float, started: float | None, top: int,
         tracked: int) -> tuple[list[tuple[str, float, dict]], dict, str]:
    """(samples of the `top` digests by time in the interval, the state to keep, what happened)."""
    kept = _kept(previous)
    state = {"at": server_now, "life": started, "digests": _merge(found, kept, server_now, tracked)}
    previous_at = finite((previous or {}).get("at"))
    if previous is None or previous_at is None:
        return [], state, "first read: the baseline"
    if previous.get("life") != started or server_now <= previous_at:
        return [], state, "interval dropped: the server restarted or its clock went back"
    seconds = server_now - previous_at
    deltas = []
    for d in found:
        before = kept.get(d.key)
        if before is not None:
            delta = tuple(now - then for now, then in zip(d.counts, before[:4], strict=True))
        elif d.first_seen is not None and d.first_seen >= int(previous_at):
            delta = d.counts
        else:
            continue
        if all(x >= 0 for x in delta) and delta[0] > 0:
            deltas.append((d, delta))
    deltas.sort(key=lambda item: item[1][1], reverse=True)
    samples: list[tuple[str, float, dict]] = []
    for d, (calls, wait, sent, examined) in deltas[:top]:
        labels = {"digest": d.digest, "schema": d.schema, "query": d.text}
        samples += [("mysql.statement_calls_per_second", calls / seconds, labels),
                    ("mysql.statement_exec_seconds_per_second", wait / PICOSECONDS / seconds, labels),
                    ("mysql.statement_mean_ms", wait / PICOSECONDS * 1000 / calls, labels),
                    ("mysql.statement_rows_per_second", sent / seconds, labels),
                    ("mysql.statement_rows_examined_per_second", examined / seconds, labels)]
    return samples, state, f"read: {min(len(deltas), top)} statements ranked of {len(found)} read"


def _kept(previous: dict | None) -> dict[str, list[float]]:
    """The kept counters, each [calls, picoseconds, sent, examined, read at]; damaged entries dropped."""
    digests = (previous or {}).get("digests")
    out: dict[str, list[float]] = {}
    if not isinstance(digests, dict):
        return out
    for key, values in digests.items():
        if isinstance(values, list) and len(values) == 5:
            numbers = [finite(v) for v in values]
            if all(n is not None for n in numbers):
                out[str(key)] = numbers  # type: ignore[assignment]
    return out


def _merge(found: list[Digest], kept: dict[str, list[float]], server_now: float,
           tracked: int) -> dict[str, list[float]]:
    merged = {d.key: [*d.counts, server_now] for d in found[:tracked]}
    older = sorted(((k, v) for k, v in kept.items() if k not in merged), key=lambda kv: kv[1][4], reverse=True)
    for key, values in older[:max(0, tracked - len(merged))]:
        merged[key] = values
    return merged
