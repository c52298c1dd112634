"""A baseline written to a file, for `dbmon files baseline` / `check` (AIDE's database, in JSON):
the scan spec it was taken with, so a check reads the tree the same way, and every entry's state.

A baseline file is input too: a hand-edited or truncated one gets an error naming what is wrong,
not a traceback."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from monitor_app.errors import DbmonError
from monitor_app.files.file_state import FileState
from monitor_app.files.tree_scan import ScanResult, ScanSpec

FORMAT = "dbmon-file-baseline/1"
_SPEC_FIELDS = ("root", "recursive", "include", "exclude", "hash_content", "hash_limit")


def dump(spec: ScanSpec, result: ScanResult, taken_at: str) -> str:
    spec_dict = {k: v for k, v in asdict(spec).items() if k in _SPEC_FIELDS}
    return json.dumps({"format": FORMAT, "taken_at": taken_at, "spec": spec_dict,
                       "entries": {p: s.as_dict() for p, s in sorted(result.states.items())},
                       "errors": result.errors}, indent=1, sort_keys=True)


def load(text: str, source: str) -> tuple[ScanSpec, dict[str, FileState]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DbmonError(f"{source}: not a baseline file (invalid JSON: {exc})", permanent=True) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DbmonError(f"{source}: not a baseline file (format is not {FORMAT!r})", permanent=True)
    spec_data, entries = data.get("spec"), data.get("entries")
    if not isinstance(spec_data, dict) or not isinstance(entries, dict):
        raise DbmonError(f"{source}: spec and entries must be objects", permanent=True)
    try:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec_data.items()
                                  if k in _SPEC_FIELDS}
        spec = ScanSpec(**values)
        if not isinstance(spec.root, str):
            raise TypeError("root")
        states = {str(p): FileState.from_dict(s) for p, s in entries.items()}
        for path, state in states.items():
            if not isinstance(state.size, int) or not isinstance(state.mode, int) or not isinstance(state.type, str):
                raise TypeError(path)
    except (TypeError, AttributeError) as exc:
        raise DbmonError(f"{source}: a malformed entry ({str(exc)[:200]})", permanent=True) from None
    return spec, states
