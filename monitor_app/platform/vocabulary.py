"""Words every concern shares, defined once: event and alert severities, schema-change risks.

Ordered from least to most serious, so `.index()` compares them.
"""

from __future__ import annotations

from typing import Literal, get_args

Severity = Literal["info", "warning", "critical", "page"]
SEVERITIES: tuple[str, ...] = get_args(Severity)

Risk = Literal["low", "medium", "high", "critical"]
RISKS: tuple[str, ...] = get_args(Risk)
