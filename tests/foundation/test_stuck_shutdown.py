"""The backstop of a worker's stop: a stop stuck with nothing running ends the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psutil

from tests.harness import ROOT

STUCK_WORKER = textwrap.dedent("""
    import subprocess, time
    import workers.handback as handback

    pool_process = subprocess.Popen(["sleep", "60"])
    print(pool_process.pid, flush=True)
    handback.STALLED_STOP_GRACE = 0.3
    handback._shutdown_began = time.monotonic()
    handback._give_up_waiting()  # no task in progress: waits out the grace, then exits
    print("still here", flush=True)
""")


def test_a_stop_stuck_with_no_task_running_kills_the_pool_and_exits(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DBMON_DATABASE_URL": f"sqlite:///{tmp_path}/store.db",
           "DBMON_DATA_DIR": str(tmp_path)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", STUCK_WORKER], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=30)
    pool_pid = int(done.stdout.split()[0])
    assert done.returncode == 1, done.stderr
    assert "still here" not in done.stdout
    assert "shutdown is stuck" in done.stderr
    assert 0.3 <= time.monotonic() - started < 20
    assert not psutil.pid_exists(pool_pid) or psutil.Process(pool_pid).status() == psutil.STATUS_ZOMBIE
