"""Files dbmon reads at run time, found through the installed package.

Everything here ships as package data, so a regular (non-editable) install is as complete as a
checkout. `monitor_app/templates` is a link to the top-level `templates/`, which keeps the pages
and notification templates where people edit them and puts them inside the wheel.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _package_path(*parts: str) -> Path:
    # dbmon is installed as files, never zipped: Jinja2, Alembic and json need real paths.
    return Path(str(files("monitor_app").joinpath(*parts)))


def static_dir() -> Path:
    """Files the pages load: dbmon's own script and style, and the vendored chart library."""
    return _package_path("templates", "static")


def templates_dir() -> Path:
    """Jinja2 pages (`status.html`, ...) and `alerting/<channel>/` notification templates."""
    return _package_path("templates")
