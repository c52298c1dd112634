"""A day of real metrics, compressed in time, through the built-in anomaly rule: it should page
exactly twice, for the one load change and the one slow-query episode.

    python -m bench.anomaly_replay [--minutes 24]

A private cluster (pg_stat_statements preloaded, pgbench scale 5) runs select-only pgbench at a
steady rate, three times that rate from 09:00 to 11:00 of the replayed day, and four sessions of
half-second queries from 15:00 to 15:45. dbmon's fast and medium tiers poll it every second of
`--minutes` real minutes, which is the day at one poll per replayed minute. The samples are then
written into a fresh store with their times stretched to a day, and `alerts.evaluate_metrics` runs
with the built-in anomaly rules (and only those) for every replayed minute.

Reported: alerts fired (target: 2, one inside each episode), the anomaly windows, and the time the
replay took. Writes bench/results/anomaly_replay.json.
"""

from __future__ import annotations

import argparse
import subprocess  # nosec B404
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from bench.pg_fast_poll_cpu import runtime  # noqa: E402
from bench.stats import write  # noqa: E402
from monitor_app.alerting.config import DefaultRules, load_alerting_config  # noqa: E402
from monitor_app.alerting.operations import AlertOperations  # noqa: E402
from monitor_app.metrics import pg_fast, pg_medium  # noqa: E402
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter  # noqa: E402
from monitor_app.store.models import Asset, MetricPoint, MetricSeries  # noqa: E402
from monitor_app.store.models.analysis import MetricAnomaly  # noqa: E402
from tests.posture.clusters import PrivateCluster  # noqa: E402

DAY = 86400.0
BASE_RATE, HIGH_RATE = 40, 120
LOAD_CHANGE = (9 / 24, 11 / 24)  # fractions of the day
SLOW_EPISODE = (15 / 24, 15.75 / 24)


def pgbench(cluster: PrivateCluster, rate: int, seconds: float) -> None:
    subprocess.run(cluster.pgbench_command("-c", "4", "-j", "2", "-S", "-n", "-R", str(rate), "-T",
                                           str(max(1, round(seconds)))),
                   capture_output=True, text=True, timeout=seconds + 120, check=True)  # nosec B603


def slow_queries(cluster: PrivateCluster, stop: threading.Event) -> None:
    conn = cluster.connect()
    try:
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("SELECT pg_sleep(0.5), count(*) FROM pgbench_branches")
    finally:
        conn.close()


def load(cluster: PrivateCluster, real_day: float, started: float) -> None:
    """The workload's day: base rate, the load change, base rate again (the slow episode runs beside it)."""
    for until, rate in ((LOAD_CHANGE[0], BASE_RATE), (LOAD_CHANGE[1], HIGH_RATE), (1.0, BASE_RATE)):
        remaining = started + until * real_day - time.monotonic()
        if remaining > 0:
            pgbench(cluster, rate, remaining)


def episode(cluster: PrivateCluster, real_day: float, started: float) -> None:
    time.sleep(max(0.0, started + SLOW_EPISODE[0] * real_day - time.monotonic()))
    stop = threading.Event()
    workers = [threading.Thread(target=slow_queries, args=(cluster, stop)) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(max(0.0, started + SLOW_EPISODE[1] * real_day - time.monotonic()))
    stop.set()
    for w in workers:
        w.join(timeout=10)


def collect(cluster: PrivateCluster, rt, asset_id: int, real_day: float) -> tuple[datetime, int]:
    started = time.monotonic()
    wall_start = datetime.now(timezone.utc)
    threads = [threading.Thread(target=load, args=(cluster, real_day, started)),
               threading.Thread(target=episode, args=(cluster, real_day, started))]
    for t in threads:
        t.start()
    polls = 0
    while time.monotonic() - started < real_day:
        tick = time.monotonic()
        pg_fast.run_poll(rt, asset_id)
        pg_medium.run_poll(rt, asset_id)
        polls += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    for t in threads:
        t.join(timeout=180)
    return wall_start, polls


def stretch(rt, asset_id: int, wall_start: datetime, factor: float, replay_start: datetime, replay_rt) -> int:
    """Every collected sample into the replay store, its time `factor` times further from the start."""
    with rt.store.session() as s:
        rows = s.execute(select(MetricSeries.name, MetricSeries.labels, MetricPoint.at, MetricPoint.value)
                         .join(MetricPoint, MetricPoint.series_id == MetricSeries.id)
                         .where(MetricSeries.asset_id == asset_id)).all()
    with replay_rt.store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name="replayed-db", source="config", external_id="replay",
                      labels={}, details={}, connection={}, status="up")
        s.add(asset)
        s.flush()
        replay_asset = asset.id
    samples = [SeriesSample(replay_asset, name, value, replay_start + (at - wall_start) * factor, labels or {})
               for name, labels, at, value in rows]
    writer = SeriesWriter(replay_rt.store)
    for i in range(0, len(samples), 5000):
        writer.write(samples[i:i + 5000])
    return len(samples)


def replay(replay_rt, replay_start: datetime) -> dict:
    anomaly_rules = [r.model_dump(by_alias=True, exclude_defaults=True) | {"kind": "anomaly"}
                     for r in DefaultRules().rules() if r.kind == "anomaly"]
    if not anomaly_rules:
        raise SystemExit("the built-in rule pack has no anomaly rule")
    config = load_alerting_config({"rules": anomaly_rules, "default_rules": {"enabled": False}})
    now = replay_start + timedelta(minutes=1)
    engine = AlertOperations(replay_rt.store, config, "bench", clock=lambda: now)
    fired: list[str] = []
    began = time.perf_counter()
    while now <= replay_start + timedelta(days=1, minutes=5):
        if engine.evaluate_metrics().fired:
            fired.append(now.isoformat())
        now += timedelta(minutes=1)
    took = time.perf_counter() - began
    with replay_rt.store.session() as s:
        windows = [{"metric": a.metric, "start": a.start.isoformat(), "end": a.end_at.isoformat() if a.end_at else None,
                    "direction": a.direction, "score": round(a.score, 1), "baseline": a.baseline, "peak": a.peak}
                   for a in s.scalars(select(MetricAnomaly).order_by(MetricAnomaly.start))]
    return {"rules": [r["name"] for r in anomaly_rules], "fired_at": fired, "windows": windows,
            "evaluations": 1445, "evaluate_seconds": round(took, 1)}


def _inside(at: str, span: tuple[float, float], start: datetime) -> bool:
    offset = (datetime.fromisoformat(at) - start).total_seconds() / DAY
    return span[0] <= offset <= span[1] + 0.5 / 24  # detected by half an hour after the episode at the latest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=24.0, help="real minutes the day is compressed into")
    parser.add_argument("--collected", type=Path, help="replay the collect.db of an earlier run instead of collecting")
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])
    real_day = args.minutes * 60
    work = Path(tempfile.mkdtemp(prefix="dbmon-replay-"))
    if args.collected:
        rt = runtime(f"sqlite:///{args.collected}", work)
        with rt.store.session() as s:
            asset_id = s.scalar(select(Asset.id).where(Asset.name == "bench-target"))
            wall_start = s.scalar(select(func.min(MetricPoint.at)))
            polls = s.scalar(select(func.count()).select_from(MetricPoint).join(
                MetricSeries, MetricSeries.id == MetricPoint.series_id).where(
                MetricSeries.name == "pg.connections"))
    else:
        wall_start, polls, rt, asset_id = collect_day(work, real_day)
    print(f"collected in {work if not args.collected else args.collected}")
    finish(args, rt, asset_id, wall_start, polls, real_day, work)


def collect_day(work: Path, real_day: float):
    cluster = PrivateCluster()
    try:
        cluster.start(listen="", shared_preload_libraries="pg_stat_statements")
        cluster.run("CREATE EXTENSION pg_stat_statements")
        subprocess.run(cluster.pgbench_command("-i", "-s", "5", "-q"), capture_output=True, check=True,
                       timeout=300)  # nosec B603
        rt = runtime(f"sqlite:///{work / 'collect.db'}", work)
        with rt.store.session() as s:
            a = Asset(kind="database", engine="postgresql", name="bench-target", source="config",
                      external_id="bench", labels={}, details={}, status="up", connection=cluster.connection())
            s.add(a)
            s.flush()
            asset_id = a.id
        wall_start, polls = collect(cluster, rt, asset_id, real_day)
    finally:
        cluster.stop()
    return wall_start, polls, rt, asset_id


def finish(args, rt, asset_id: int, wall_start: datetime, polls: int, real_day: float, work: Path) -> None:
    replay_dir = work / "replay"
    replay_dir.mkdir()
    replay_rt = runtime(f"sqlite:///{replay_dir / 'replay.db'}", replay_dir)
    replay_start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    samples = stretch(rt, asset_id, wall_start, DAY / real_day, replay_start, replay_rt)
    result = replay(replay_rt, replay_start)
    in_load = [t for t in result["fired_at"] if _inside(t, LOAD_CHANGE, replay_start)]
    in_slow = [t for t in result["fired_at"] if _inside(t, SLOW_EPISODE, replay_start)]
    result.update(real_minutes=args.minutes, polls=polls, samples=samples,
                  alerts_fired=len(result["fired_at"]), in_load_change=len(in_load), in_slow_episode=len(in_slow),
                  target_met=len(result["fired_at"]) == 2 and len(in_load) == 1 and len(in_slow) == 1)
    path = write("anomaly_replay", result)
    print(f"alerts fired {result['alerts_fired']} (load change {len(in_load)}, slow episode {len(in_slow)}); "
          f"{len(result['windows'])} windows; {polls} polls; evaluation {result['evaluate_seconds']} s -> {path}")


if __name__ == "__main__":
    main()
