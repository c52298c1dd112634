"""The fast tier's rates and ratios, from the counter deltas of one interval."""

from __future__ import annotations

from monitor_app.metrics.counter_rates import Interval, ratio

# Counters read as "how many happened": rules on them want the count of the interval too.
EVENT_COUNTERS = ("deadlocks", "conflicts", "checksum_failures", "temp_files", "sessions_abandoned",
                  "sessions_fatal", "sessions_killed")
PER_SECOND = ("tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "temp_files",
              "temp_bytes", "deadlocks", "conflicts", "checksum_failures", "blks_read", "blks_hit", "sessions",
              "sessions_abandoned", "sessions_fatal", "sessions_killed")
# Milliseconds spent per second of wall time: the average number of sessions in that state.
TIME_COUNTERS = {"session_time": "pg.open_sessions_avg", "active_time": "pg.active_sessions_avg",
                 "idle_in_transaction_time": "pg.idle_in_transaction_sessions_avg"}


def derived(span: Interval) -> list[tuple[str, float]]:
    d, seconds = span.deltas, span.seconds
    out: list[tuple[str, float]] = []
    if "xact_commit" in d and "xact_rollback" in d:
        commits, rollbacks = d["xact_commit"], d["xact_rollback"]
        out += [("pg.transactions_per_second", (commits + rollbacks) / seconds),
                ("pg.commits_per_second", commits / seconds),
                ("pg.rollbacks_per_second", rollbacks / seconds),
                ("pg.rollback_ratio", ratio(rollbacks, commits + rollbacks) or 0.0)]
    if "blks_hit" in d and "blks_read" in d:
        hit_ratio = ratio(d["blks_hit"], d["blks_hit"] + d["blks_read"])
        if hit_ratio is not None:  # no block touched in the interval: no ratio, rather than a made-up 1
            out.append(("pg.cache_hit_ratio", hit_ratio))
    out += [(f"pg.{name}_per_second", d[name] / seconds) for name in PER_SECOND if name in d]
    out += [(f"pg.{name}_in_interval", d[name]) for name in EVENT_COUNTERS if name in d]
    out += [(metric, d[name] / 1000 / seconds) for name, metric in TIME_COUNTERS.items() if name in d]
    if "wal_position" in d:
        out.append(("pg.wal_bytes_per_second", d["wal_position"] / seconds))
    return out
