"""An alert is its label set: the same labels always give the same fingerprint,
so a repeat firing updates one alert instead of creating another."""

from __future__ import annotations

import hashlib
import json
from typing import Mapping


def fingerprint(labels: Mapping[str, object]) -> str:
    canonical = json.dumps(sorted((str(k), str(v)) for k, v in labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
