"""The built-in rule definitions, as shipped in `default_rules.yaml`.

Only raw definitions live here; `config.DefaultRules` validates them with the user's
overrides, so a broken override is reported with its field path like any other config error.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

PACK = Path(__file__).with_name("default_rules.yaml")


@lru_cache(maxsize=1)
def _definitions() -> tuple[dict, ...]:
    return tuple(yaml.safe_load(PACK.read_text()) or ())


def builtin_definitions() -> dict[str, dict]:
    """Name -> definition, in pack order; copies, so callers may merge into them."""
    return {d["name"]: copy.deepcopy(d) for d in _definitions()}
