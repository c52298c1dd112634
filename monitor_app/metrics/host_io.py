"""A host's disk and network rates between two of its samples.

The raw counters of the last sample are kept in the host's poll state (tier `host`), so any
worker that samples the host next can take the difference; a reboot (the boot time moved) or a
counter going back drops that interval rather than making up a rate.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.host_resources import Sample, io_rates
from monitor_app.metrics.poll_tier import PollTier

POLLS = PollTier("host", "host")


def rates_since_last(session: Session, host_id: int, counters: dict[str, float], booted: float,
                     now: datetime) -> list[Sample]:
    state = POLLS.state(session, host_id)
    current = CounterPoll(now.timestamp(), booted, None, counters)
    span, _ = interval(CounterPoll.from_json(state.counters), current)
    state.counters, state.polled_at = current.as_json(), now
    raw = [Sample(f"host.{name}", value) for name, value in counters.items()]
    return raw + (io_rates(span.deltas, span.seconds) if span is not None else [])
