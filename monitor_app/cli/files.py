"""`dbmon files ...`: AIDE-style baselines and checks of any tree, and config diffs, for people
and CI pipelines. `check` and `diff-config` exit like diff(1): 0 unchanged, 1 changes, 2 trouble."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from monitor_app.errors import DbmonError

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_TROUBLE)


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

    spec = ScanSpec(root=str(path.absolute()), include=tuple(include), exclude=tuple(exclude),
                    hash_content=not no_hash, hash_limit=hash_limit)
    result = scan(spec)
    if result.root_error:
        _fail(f"{path}: {result.root_error}")
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
    from monitor_app.files.tree_scan import ScanSpec, scan

    try:
        spec, old = load(baseline_path.read_text(errors="replace"), str(baseline_path))
    except OSError as exc:
        _fail(f"{baseline_path}: {exc.strerror or exc}")
    except DbmonError as exc:
        _fail(exc.message)
    root = str(path.absolute())
    if root != spec.root:
        _fail(f"the baseline was taken of {spec.root}, not {root}")
    result = scan(ScanSpec(**{**spec.__dict__, "root": root}), old)
    if result.root_error:
        _fail(f"{path}: {result.root_error}")
    changes = compare(old, result.states)
    if fmt == "json":
        click.echo(json.dumps([c.as_dict() for c in changes], indent=1))
    else:
        for c in changes:
            target = f" -> {c.dest}" if c.dest else ""
            click.echo(f"{c.type:20} {c.path}{target}  {','.join(c.fields)}")
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
