"""One diff, three ways in: two snapshot files, a file and a live DSN, two live DSNs.

`dbmon schema diff` must give the same answer whatever the form of its inputs, so every
diff scenario of the schema suite runs all three through the CLI and requires identical
output (records, their order and exit code) before its own assertions look at it. The
text format is a function of the records alone, so it is not run three times as well.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from monitor_app.cli.main import cli
from monitor_app.schema.snapshot import take_snapshot
from monitor_app.schema.snapshot_format import dump

FORMS = ("file/file", "file/dsn", "dsn/dsn")


def save_snapshot(dsn: str, path: Path) -> str:
    path.write_text(dump(take_snapshot(dsn)) + "\n")
    return str(path)


def _cli_diff(old: str, new: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["schema", "diff", old, new, "--format", "json"], catch_exceptions=False)
    return result.exit_code, result.output


def diff_files(old_file: str, new_file: str) -> list[dict]:
    """The change records of two snapshot files, through the CLI as a user runs it."""
    exit_code, text = _cli_diff(old_file, new_file)
    assert exit_code == (1 if json.loads(text) else 0), text
    return json.loads(text)


def diff_every_way(*, old_file: str, new_file: str, old_dsn: str, new_dsn: str) -> list[dict]:
    """The change records, after checking that all three input forms agree on them."""
    inputs = {"file/file": (old_file, new_file), "file/dsn": (old_file, new_dsn), "dsn/dsn": (old_dsn, new_dsn)}
    outputs = {form: _cli_diff(old, new) for form, (old, new) in inputs.items()}
    reference = outputs["file/file"]
    for form in FORMS[1:]:
        assert outputs[form] == reference, f"{form} differs from file/file:\n{outputs[form]}\n---\n{reference}"
    exit_code, text = reference
    assert exit_code == (1 if json.loads(text) else 0), text
    return json.loads(text)
