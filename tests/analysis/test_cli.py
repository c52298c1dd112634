"""`dbmon metrics anomalies` and `dbmon metrics forecast` on CSV files: the rules' own detector and
forecast, offline, and bad files refused naming the line."""

from __future__ import annotations

import json
import random
import subprocess  # nosec B404 - the command under test
import sys
from datetime import datetime, timedelta, timezone

import pytest

START = datetime(2026, 3, 2, tzinfo=timezone.utc)


def dbmon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor_app.cli.main", *args], capture_output=True, text=True,
                          timeout=60, check=False)  # nosec B603


def write(path, rows, header="timestamp,value") -> str:
    path.write_text(header + "\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return str(path)


def test_it_prints_the_anomaly_windows_as_json(tmp_path):
    rng = random.Random(9)
    rows = []
    for i in range(2 * 1440):
        at = START + timedelta(minutes=i)
        shift = -40 if 1800 <= i < 1860 else 0  # an hour's drop on the second day
        rows.append((at.isoformat().replace("+00:00", "Z") if i % 2 else int(at.timestamp()),
                     round(120 + rng.gauss(0, 3) + shift, 3)))
    del rows[600:630]  # a gap is fine
    done = dbmon("metrics", "anomalies", "--input", write(tmp_path / "s.csv", rows), "--format", "json")
    assert done.returncode == 0, done.stderr
    (window,) = json.loads(done.stdout)
    assert window["start"] == (START + timedelta(minutes=1800)).isoformat().replace("+00:00", "Z")
    assert window["end"] == (START + timedelta(minutes=1860)).isoformat().replace("+00:00", "Z")
    assert window["direction"] == "down" and window["score"] > 8
    text = dbmon("metrics", "anomalies", "--input", str(tmp_path / "s.csv"))
    assert text.returncode == 0 and "down" in text.stdout and window["start"] in text.stdout
    up_only = dbmon("metrics", "anomalies", "--input", str(tmp_path / "s.csv"), "--direction", "up",
                    "--format", "json")
    assert json.loads(up_only.stdout) == []


def test_it_forecasts_the_time_to_a_threshold(tmp_path):
    rows = [(int((START + timedelta(minutes=10 * i)).timestamp()), 40 + 0.5 * i / 6) for i in range(6 * 48)]
    done = dbmon("metrics", "forecast", "--input", write(tmp_path / "g.csv", rows), "--threshold", "100")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    # 0.5 an hour, 63.9 at the last point: 100 in 72.2 hours
    assert set(out) == {"slope_per_hour", "eta", "hours_to_threshold"}
    assert abs(out["slope_per_hour"] - 0.5) < 1e-6 and abs(out["hours_to_threshold"] - 72.17) < 0.05
    last = START + timedelta(minutes=10 * (6 * 48 - 1))
    eta = datetime.fromisoformat(out["eta"].replace("Z", "+00:00"))
    assert abs((eta - last - timedelta(hours=out["hours_to_threshold"])).total_seconds()) < 60
    away = json.loads(dbmon("metrics", "forecast", "--input", str(tmp_path / "g.csv"), "--threshold", "10").stdout)
    assert away["eta"] is None and away["hours_to_threshold"] is None and away["slope_per_hour"] > 0


@pytest.mark.parametrize("content, words", [
    ("", "empty file"),
    ("time,value\n1,2\n", "line 1: expected the header"),
    ("timestamp,value\n1700000000,1\n1700000060,abc\n", "line 3: value 'abc' is not a number"),
    ("timestamp,value\n1700000060,1\n1700000000,2\n", "line 3: unsorted timestamp"),
    ("timestamp,value\n1700000000,1\n1700000000,2\n", "line 3: duplicate timestamp"),
    ("timestamp,value\nyesterday,1\n", "line 2: timestamp 'yesterday' is neither ISO-8601 nor epoch seconds"),
    ("timestamp,value\n1700000000,1,2\n", "line 2: expected 2 fields"),
    ("timestamp,value\n", "no data lines"),
])
@pytest.mark.parametrize("command", [["anomalies"], ["forecast", "--threshold", "5"]])
def test_bad_input_exits_2_naming_the_line(tmp_path, content, words, command):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    done = dbmon("metrics", *command, "--input", str(path))
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
