"""`make lint`: ruff and mypy with the project's own configuration, as CI runs them."""

from __future__ import annotations

import importlib.util
import subprocess  # nosec B404 - runs the project's own lint tools
import sys
from pathlib import Path

import pytest

from tests.services import missing

ROOT = Path(__file__).resolve().parents[2]


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(tool) is None:
        missing(f"{tool} (install the lint extra: make install)")
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True,  # nosec B603
                          text=True, timeout=600, check=False)


def branches(count: int) -> str:
    body = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(count))
    return f"def dispatch(x):\n{body}    return -1\n"


@pytest.mark.slow  # the whole of `make lint`
def test_it_passes_on_the_code_base():
    ruff = run("ruff", "check", ".")
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    mypy = run("mypy")
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_it_fails_on_a_function_past_the_complexity_ceiling(tmp_path):
    (tmp_path / "at_ceiling.py").write_text(branches(19))  # complexity 20
    (tmp_path / "past_ceiling.py").write_text(branches(20))  # complexity 21
    result = run("ruff", "check", "--config", str(ROOT / "ruff.toml"), "--output-format", "concise", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "past_ceiling.py" in result.stdout and "C901" in result.stdout
    assert "at_ceiling.py" not in result.stdout


def test_it_fails_on_a_likely_bug(tmp_path):
    (tmp_path / "late_binding.py").write_text(
        "def callbacks():\n    out = []\n    for i in range(3):\n        out.append(lambda: i)\n    return out\n"
        "def append(item, into=[]):\n    into.append(item)\n    return into\n")
    result = run("ruff", "check", "--config", str(ROOT / "ruff.toml"), "--output-format", "concise", str(tmp_path))
    assert result.returncode == 1
    assert "B023" in result.stdout and "B006" in result.stdout


@pytest.mark.parametrize("code", [
    "def port(value: str) -> int:\n    return value\n",
    "def first(names: list[str] | None) -> str:\n    return names[0]\n",
])
@pytest.mark.slow  # a mypy run each
def test_mypy_fails_on_a_new_type_error(code, tmp_path):
    (tmp_path / "new_module.py").write_text(code)
    result = run("mypy", "--config-file", str(ROOT / "mypy.ini"), "--cache-dir", str(tmp_path / "cache"),
                 str(tmp_path / "new_module.py"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error:" in result.stdout


def test_ci_runs_the_gate_before_the_tests():
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip().startswith("make ")]
    assert "make lint" in steps and steps.index("make lint") < steps.index("make test")
