"""A regular (non-editable) install from the wheel is complete: run from outside the checkout, it
serves the status page and sends notifications, which need the templates shipped as package data."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.alerting.peers import HttpReceiver
from tests.harness import ROOT, wait_for
from tests.services import free_port

pytestmark = pytest.mark.slow

# What a new user's checkout holds that is not part of the product.
NOT_SHIPPED = shutil.ignore_patterns(".git", ".venv*", "var", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".coverage*", "htmlcov", "tests", "bench")


def _build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=NOT_SHIPPED)
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    return next(out.glob("dbmon-*.whl"))


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    venv = tmp / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies come from the test venv, appended after the fresh venv's own site-packages as a
    # plain path: .pth files in it (the editable dbmon's finder among them) are not run, so dbmon
    # itself can come only from the wheel.
    (site / "test-venv-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return venv


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DBMON_", "COV_", "COVERAGE", "PYTHONPATH"))}
    return {**env, **extra}


def test_it_runs_from_a_wheel_outside_the_checkout(tmp_path):
    wheel = _build_wheel(tmp_path)
    venv = _fresh_venv(tmp_path, wheel)
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    receiver = HttpReceiver()
    (run_dir / "dbmon.yaml").write_text(yaml.safe_dump({"alerting": {
        "channels": {"ops": {"type": "webhook", "url": receiver.url(), "allow_private_targets": True}},
        "route": {"channels": ["ops"]}}}))
    port = free_port()
    env = _clean_env(DBMON_DATA_DIR=str(run_dir / "var"), DBMON_CONFIG_FILE=str(run_dir / "dbmon.yaml"),
                     DBMON_SECRET_KEY="wheel-test", DBMON_API_PORT=str(port), DBMON_HOST_SAMPLE_INTERVAL="3600",
                     DBMON_REACHABILITY_INTERVAL="3600", DBMON_FILESYSTEM_POLLING_INTERVAL="0.05")
    dbmon = str(venv / "bin" / "dbmon")

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import monitor_app; print(monitor_app.__file__)"],
                           env=env, cwd=run_dir, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where

    log = open(run_dir / "up.log", "wb")
    up = subprocess.Popen([dbmon, "up"], env=env, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT,
                          start_new_session=True)
    try:
        def page():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode(errors="replace")
            except OSError:
                assert up.poll() is None, (run_dir / "up.log").read_text(errors="replace")
                return None

        status, body = wait_for(page, 90, 0.5, "the status page")
        assert status == 200 and "<html" in body.lower(), (status, (run_dir / "up.log").read_text(errors="replace"))

        sent = subprocess.run([dbmon, "alerts", "test-send", "ops", "--queue"], env=env, cwd=run_dir,
                              capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        got = receiver.wait_for(1, timeout=60)
        assert got and got[0].json()["dbmon"]["kind"] == "test", (run_dir / "up.log").read_text(errors="replace")
    finally:
        receiver.stop()
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGTERM)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
        log.close()
