"""The medium tier's rates: server-wide sources over one interval, and the statements that took
the most time in it.

A statement's numbers in `pg_stat_statements` are cumulative since its entry was made: its
interval is the difference from the previous poll, taken only when the entry was there before
and no number went back (an entry evicted and made again starts over). Only statements among
the `tracked` with the most time or calls since their reset are compared. A statement the last
poll did not see is new since then when that poll saw every statement of the database (fewer
than `tracked`), and all its numbers are the interval's; otherwise it is ranked from the poll
after it joins the tracked ones. The ranking is by time spent in the interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor_app.metrics.counter_rates import Interval, ratio
from monitor_app.metrics.pg_medium_queries import STATEMENT_FIELDS


def source_rates(source: str, span: Interval) -> list[tuple[str, float]]:
    d, seconds = span.deltas, span.seconds
    out: list[tuple[str, float]] = []
    if source == "bgwriter":
        out += [(f"pg.{name}_in_interval", d[name]) for name in
                ("checkpoints_timed", "checkpoints_requested", "maxwritten_clean") if name in d]
        out += [(f"pg.{name}_per_second", d[name] / seconds) for name in
                ("buffers_checkpoint", "buffers_clean", "buffers_backend", "buffers_alloc") if name in d]
        # Seconds spent writing (syncing) per second: the share of the interval the checkpointer was busy.
        out += [(f"pg.{name[:-3]}_seconds_per_second", d[name] / 1000 / seconds) for name in
                ("checkpoint_write_ms", "checkpoint_sync_ms") if name in d]
        if "checkpoints_timed" in d and "checkpoints_requested" in d:
            requested = ratio(d["checkpoints_requested"], d["checkpoints_timed"] + d["checkpoints_requested"])
            if requested is not None:
                out.append(("pg.checkpoints_requested_ratio", requested))
    elif source == "archiver":
        out += [(f"pg.{name}_in_interval", d[name]) for name in ("archived", "archive_failed") if name in d]
    elif source == "statements_info" and "dealloc" in d:
        out.append(("pg.statements_evicted_in_interval", d["dealloc"]))
    return out


@dataclass(frozen=True)
class StatementInterval:
    queryid: str
    query: str
    seconds: float
    deltas: dict[str, float]

    def series(self) -> list[tuple[str, float]]:
        d, s = self.deltas, self.seconds
        out = [("pg.statement_calls_per_second", d["calls"] / s),
               ("pg.statement_exec_seconds_per_second", d["exec_ms"] / 1000 / s),
               ("pg.statement_rows_per_second", d["rows"] / s),
               ("pg.statement_blocks_hit_per_second", d["blks_hit"] / s),
               ("pg.statement_blocks_read_per_second", d["blks_read"] / s),
               ("pg.statement_temp_blocks_per_second", d["temp_blks_written"] / s)]
        if d["calls"] > 0:
            out.append(("pg.statement_mean_ms", d["exec_ms"] / d["calls"]))
        return out

    @property
    def labels(self) -> dict:
        return {"queryid": self.queryid, "query": self.query}


def top_statements(previous: dict[str, list[float]], current: dict[str, tuple[str, tuple[float, ...]]],
                   seconds: float, top: int, *, previous_complete: bool = False) -> list[StatementInterval]:
    """The `top` statements by execution time in the interval, among those called in it."""
    ranked = []
    for queryid, (query, numbers) in current.items():
        before = previous.get(queryid)
        if before is None and previous_complete:
            before = [0.0] * len(numbers)
        if before is None or len(before) != len(numbers):
            continue
        deltas = {name: now - then for name, now, then in zip(STATEMENT_FIELDS, numbers, before, strict=True)}
        if any(delta < 0 for delta in deltas.values()) or deltas["calls"] <= 0:
            continue
        ranked.append(StatementInterval(queryid, query, seconds, deltas))
    ranked.sort(key=lambda s: (-s.deltas["exec_ms"], -s.deltas["calls"], s.queryid))
    return ranked[:top]
