"""Each asset's periodic work falls at its own slot in its interval, so a thousand assets are not
all due at the top of the minute."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from monitor_app.platform import spread

T0 = datetime(2030, 1, 2, 3, 4, 0, tzinfo=timezone.utc)


def test_an_assets_offset_is_stable_and_inside_its_interval():
    offsets = [spread.offset(asset_id, 60) for asset_id in range(1, 2001)]
    assert all(0 <= o < 60 for o in offsets)
    assert offsets == [spread.offset(asset_id, 60) for asset_id in range(1, 2001)]
    assert spread.offset(7, 60) != spread.offset(8, 60)


def test_a_thousand_offsets_fill_every_second_of_the_minute_evenly():
    per_second = Counter(int(spread.offset(asset_id, 60)) for asset_id in range(1, 1001))
    assert len(per_second) == 60
    # 1000/60 = 16.7 a second; all at the top of the minute would be 1000 in one second.
    assert max(per_second.values()) <= 32 and min(per_second.values()) >= 5


def test_slots_repeat_every_interval_and_a_late_run_keeps_its_slot():
    slot = spread.last_slot(42, 60, T0)
    assert slot <= T0 < slot + timedelta(seconds=60)
    assert spread.next_slot(42, 60, slot) == slot + timedelta(seconds=60)
    assert spread.last_slot(42, 60, slot + timedelta(seconds=59.9)) == slot
    late_run = slot + timedelta(seconds=20)
    assert not spread.is_due(42, 60, late_run, slot + timedelta(seconds=59))
    assert spread.is_due(42, 60, late_run, slot + timedelta(seconds=60))


def test_a_never_run_asset_is_due_at_once():
    assert spread.is_due(1, 3600, None, T0)


def _sweep_counts(rt, store, start: datetime, ticks: int, tick: float) -> list[int]:
    """Run the schema sweep every `tick` seconds over one interval, marking what it dispatched as checked."""
    from sqlalchemy import update

    from monitor_app.schema.check import due_assets
    from monitor_app.store.models.schema import SchemaWatchState

    counts = []
    for i in range(1, ticks + 1):
        now = start + timedelta(seconds=i * tick)
        due = due_assets(rt, now=now)
        counts.append(len(due))
        if due:
            with store.session() as s:
                s.execute(update(SchemaWatchState).where(SchemaWatchState.asset_id.in_(due)).values(checked_at=now))
    return counts


def test_a_sweep_over_a_thousand_assets_checked_together_dispatches_them_evenly(store, tmp_path):
    """All 1000 were checked at the same instant (a start-up); every 5 s tick of the next
    minute then dispatches about 1000/12 of them, and each exactly once."""
    from monitor_app.store.models import Asset
    from monitor_app.store.models.schema import SchemaWatchState
    from tests.schema.conftest import make_runtime

    rt = make_runtime(store, tmp_path, {"schema": {"check_interval": 60}})
    with store.session() as s:
        assets = [Asset(kind="database", engine="sqlite", name=f"spread-{i}", source="config",
                        external_id=f"spread-{i}", labels={}, connection={"path": f"/nowhere/{i}.db"},
                        details={}, status="up") for i in range(1000)]
        s.add_all(assets)
        s.flush()
        ids = [a.id for a in assets]
        s.add_all([SchemaWatchState(asset_id=i, trigger_installed=False, open_mismatches=[], checked_at=T0)
                   for i in ids])
    counts = _sweep_counts(rt, store, T0, ticks=12, tick=5)
    assert sum(counts) == 1000, counts  # each asset once in its interval
    assert max(counts) <= 2 * 1000 / 12, counts  # not a herd: at most twice the even share
    assert min(counts) >= 1000 / 12 / 3, counts
    next_minute = _sweep_counts(rt, store, T0 + timedelta(seconds=60), ticks=12, tick=5)
    assert next_minute == counts  # the same slots the next minute
