"""The domain core imports neither Celery nor Flask; only the process entry points (`monitor_app.cli`) do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import importlib, json, pkgutil, sys
import monitor_app
names = [m.name for m in pkgutil.walk_packages(monitor_app.__path__, "monitor_app.")
         if not m.name.startswith("monitor_app.cli")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": len(names),
                  "frameworks": sorted(m for m in sys.modules if m.split(".")[0] in ("celery", "flask", "flask_restx"))}))
"""


@pytest.mark.slow  # a Python process importing every domain module
def test_no_domain_module_pulls_in_celery_or_flask():
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["modules"] > 80
    assert report["frameworks"] == []


def test_the_top_level_holds_packages_not_loose_modules():
    loose = sorted(p.name for p in (ROOT / "monitor_app").glob("*.py") if p.name != "__init__.py")
    assert loose == ["errors.py"]
