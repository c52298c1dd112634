"""`dbmon files ...`: AIDE-style baselines and checks of any tree, and config diffs, for people
and CI pipelines. `check` and `diff-config` exit like diff(1): 0 unchanged, 1 changes, 2 trouble.

A check re-hashes every file instead of trusting the baseline's size and mtime (as the watcher
does between its own scans): mtimes are set at will (`touch -r`), and a check exists to catch
exactly the change made to look like none. What cannot be read is trouble when it is the root and
a warning below it, never a deletion. The baseline file itself is left out of the tree it
describes, so `baseline . --out base.json` does not make every later check fail."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from monitor_app.errors import DbmonError

if TYPE_CHECKING:
    from monitor_app.files.tree_scan import ScanResult

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2
MAX_WARNINGS = 20  # unreadable paths named on stderr; the rest are counted
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_TROUBLE)


def _shown(path: str) -> str:
    """A path for a line of text: a newline in a file name must not pass for another line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", path)


def _readable(path: Path, root: str, result: ScanResult) -> None:
    """Trouble when the root cannot be read or the tree is too large to read whole."""
    from monitor_app.files.tree_scan import display_path

    if result.root_error:
        _fail(f"{path}: {result.root_error}")
    listing_error = result.errors.get(display_path(root))
    if listing_error:
        _fail(f"{path}: cannot be read ({listing_error})")
    if result.truncated:
        _fail(f"{path}: more than {len(result.states)} entries; narrow it with --include or --exclude")


def _drop_own_file(result: ScanResult, baseline_path: Path) -> str:
    from monitor_app.files.tree_scan import display_path

    own = display_path(str(baseline_path.absolute()))
    result.states.pop(own, None)
    return own


def _unread(result: ScanResult) -> list[str]:
    """Paths whose state is not known now: unreadable directories and files, and files that
    changed while they were hashed."""
    return list(result.errors) + result.changing


def _scope(old: dict, result: ScanResult, unread: list[str]) -> set[str] | None:
    """The paths this read answers for: all of them, less the unread ones and what lies under
    them. A directory that could be stat'ed but not listed still answers for itself (its mode)."""
    if not unread:
        return None
    unknown = {u for u in unread if u not in result.states}
    below = tuple(u.rstrip("/") + "/" for u in unread)
    return {p for p in set(old) | set(result.states) if p not in unknown and not p.startswith(below)}


@click.group("files")
def files() -> None:
    """File baselines, checks and config diffs."""


@files.command("baseline")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--include", multiple=True, help="Glob on the relative path or the name; repeatable.")
@click.option("--exclude", multiple=True)
@click.option("--no-hash", is_flag=True, help="Compare by size and mtime only (no SHA-256).")
@click.option("--hash-limit", default=256 << 20, show_default=True, help="Files larger than this are not hashed.")
def baseline_cmd(path: Path, out: Path, include, exclude, no_hash: bool, hash_limit: int) -> None:
    """Record the state of every entry under PATH into a baseline file."""
    from monitor_app.files.baseline_file import dump
    from monitor_app.files.tree_scan import ScanSpec, scan
    from monitor_app.store.base import iso, utcnow

    root = os.path.realpath(path)  # a symlinked root is the tree it points to
    spec = ScanSpec(root=root, include=tuple(include), exclude=tuple(exclude),
                    hash_content=not no_hash, hash_limit=hash_limit)
    result = scan(spec)
    _readable(path, root, result)
    _drop_own_file(result, out)
    try:
        out.write_text(dump(spec, result, iso(utcnow()) or ""))
    except OSError as exc:
        _fail(f"{out}: {exc.strerror or exc}")
    click.echo(f"{len(result.states)} entries recorded in {out}"
               + (f"; {len(result.errors)} unreadable" if result.errors else ""), err=True)


@files.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check_cmd(path: Path, baseline_path: Path, fmt: str) -> None:
    """Compare PATH with a baseline file; exit 0 unchanged, 1 changed, 2 trouble."""
    from monitor_app.files.baseline_file import load
    from monitor_app.files.compare import compare
    from monitor_app.files.tree_scan import scan

    try:
        spec, old = load(baseline_path.read_text(errors="replace"), str(baseline_path))
    except OSError as exc:
        _fail(f"{baseline_path}: {exc.strerror or exc}")
    except DbmonError as exc:
        _fail(exc.message)
    root = os.path.realpath(path)
    if root != spec.root:
        _fail(f"{baseline_path} is a baseline of {spec.root}, not of {root}")
    result = scan(spec)  # no hashes taken over from the baseline: see the module docstring
    _readable(path, root, result)
    old.pop(_drop_own_file(result, baseline_path), None)
    unread = _unread(result)
    for unread_path in unread[:MAX_WARNINGS]:
        why = result.errors.get(unread_path, "changed while it was read")
        click.echo(f"warning: {_shown(unread_path)}: {why}; not compared", err=True)
    if len(unread) > MAX_WARNINGS:
        click.echo(f"warning: {len(unread) - MAX_WARNINGS} more paths not compared", err=True)
    changes = compare(old, result.states, _scope(old, result, unread))
    if fmt == "json":
        click.echo(json.dumps([c.as_dict() for c in changes], indent=1))
    else:
        for c in changes:
            target = f" -> {_shown(c.dest)}" if c.dest else ""
            click.echo(f"{c.type:20} {_shown(c.path)}{target}  {','.join(c.fields)}")
        click.echo(f"{len(changes)} change(s) in {len(result.states)} entries", err=True)
    sys.exit(EXIT_DIFFERENT if changes else EXIT_SAME)


@files.command("diff-config")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["postgresql", "pg_hba", "mysql", "redis", "pgpass"]),
              help="Guessed from the file name when omitted.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="json", show_default=True)
def diff_config_cmd(old: Path, new: Path, kind: str | None, fmt: str) -> None:
    """Diff two versions of a config file by meaning: parameters (or pg_hba rules) with risk."""
    from monitor_app.files.config_diff import diff_config_files, guess_kind

    kind = kind or guess_kind(str(new)) or guess_kind(str(old))
    if kind is None:
        _fail(f"cannot tell the kind of {new.name} from its name; give --kind")
    try:
        changes = diff_config_files(str(old), str(new), kind)
    except OSError as exc:
        _fail(f"{exc.filename or old}: {exc.strerror or exc}")
    if fmt == "json":
        click.echo(json.dumps(changes, indent=1))
    else:
        for c in changes:
            name = c.get("parameter") or c.get("rule")
            restart = {True: "restart", False: "reload", None: "?"}[c.get("restart_required")]
            click.echo(f"{c['risk']:8} {c['change']:8} {name}: {c.get('old')!r} -> {c.get('new')!r} ({restart})")
    sys.exit(EXIT_DIFFERENT if changes else EXIT_SAME)
