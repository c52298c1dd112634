"""dbmon's rescan of a 10,000-file tree against AIDE's check of the same tree, side by side.

A tree of --files files (sizes 0 to 64 KiB, about a tenth empty) in 100 directories two levels
deep, in a temp dir under --dir. Timed in the same process, interleaved, after one warm-up round
(so both read from the page cache), median over --runs rounds:

- stat_rescan: `tree_scan.scan(ScanSpec(root))` + `compare` against the stored baseline: the
  steady-state rescan dbmon runs for a watch whose kinds are not hashed (data, wal, log).
- hash_rescan_reuse: `hash_content=True` with `previous`: a config or backup watch's rescan, which
  hashes only what the stat says moved (nothing, here).
- hash_rescan_cold: `hash_content=True` without `previous`: every file hashed, as AIDE does on every
  check. This is the like-for-like comparison.
- aide --check (`/usr/bin/aide`, its default single worker thread) with a rule of
  p+i+n+u+g+s+m+sha256 on the tree, database written by `aide --init` (also timed, once).

dbmon's figures leave out reading the baseline from its store and writing the changes (see
files_watcher_idle for a whole rescan through the worker). CPU seconds are given beside wall clock
(the process's own rusage for dbmon, the children's for AIDE).

Then the agreement check: 100 files modified (50 grown, 50 rewritten at the same size), 50 deleted,
50 added; dbmon's `compare` (stat-only and cold-hash) and AIDE's report must each name exactly
those files (AIDE also lists directories whose mtime moved; dbmon does not report directories'
size and mtime by design, so only regular files are compared).

Targets: stat_rescan < 0.9 s; AIDE's check >= 2x slower than stat_rescan.

    python -m bench.files_rescan_vs_aide [--files 10000] [--runs 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor_app.files.compare import compare  # noqa: E402
from monitor_app.files.tree_scan import ScanSpec, scan  # noqa: E402

from bench.stats import write  # noqa: E402

AIDE = "/usr/bin/aide"
TARGET_RESCAN_S = 0.9
TARGET_RATIO = 2.0
AIDE_ERRORS_FROM = 8  # exit codes 1-7 are bit flags for added/removed/changed entries
INVERT = bytes(range(255, -1, -1))


def build_tree(root: Path, files: int, rng: random.Random) -> list[Path]:
    paths = []
    for i in range(files):
        directory = root / f"top{i % 10}" / f"sub{(i // 10) % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"file{i:05d}.dat"
        path.write_bytes(b"" if rng.random() < 0.1 else rng.randbytes(rng.randrange(1, 64 * 1024 + 1)))
        paths.append(path)
    return paths


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def dbmon_rescan(root: str, baseline: dict, hash_content: bool, reuse: bool) -> tuple[float, float, list]:
    """(wall s, cpu s, changes) of one scan + compare."""
    t0, c0 = time.perf_counter(), cpu_self()
    result = scan(ScanSpec(root, hash_content=hash_content), baseline if reuse else None)
    changes = compare(baseline, result.states)
    return time.perf_counter() - t0, cpu_self() - c0, changes


def aide_version() -> str:
    done = subprocess.run([AIDE, "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).split("\n")[0].strip()


def aide_conf(workdir: Path, root: str) -> Path:
    # AIDE reads a selection line as a regular expression: keep the path free of its metacharacters.
    if re.escape(root) != root:
        raise SystemExit(f"choose a --dir whose path has no regular expression metacharacters: {root}")
    conf = workdir / "aide.conf"
    conf.write_text(f"database_in=file:{workdir}/aide.db\ndatabase_out=file:{workdir}/aide.db.new\n"
                    "report_url=stdout\nBENCH = p+i+n+u+g+s+m+sha256\n"
                    f"{root} BENCH\n")
    return conf


def run_aide(conf: Path, action: str) -> tuple[float, float, str]:
    """(wall s, cpu s, report) of `aide --init` or `aide --check`."""
    t0, c0 = time.perf_counter(), cpu_children()
    done = subprocess.run([AIDE, f"--{action}", "-c", str(conf)], capture_output=True, text=True, errors="replace")
    wall, cpu = time.perf_counter() - t0, cpu_children() - c0
    if done.returncode >= AIDE_ERRORS_FROM:
        raise RuntimeError(f"aide --{action} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, cpu, done.stdout


def aide_findings(report: str) -> dict[str, set[str]]:
    """Entries AIDE listed as added, removed and changed, by type letter (f: file, d: directory)."""
    found: dict[str, set[str]] = {}
    section = None
    for line in report.splitlines():
        heading = line.strip()
        if heading in ("Added entries:", "Removed entries:", "Changed entries:"):
            section = heading.split()[0].lower()
            continue
        if heading.startswith(("Detailed information", "The attributes of")):
            section = None
        match = re.match(r"^(\S)[^:]*: (/.*)$", line)
        if section and match:
            found.setdefault(f"{section}_{match.group(1)}", set()).add(match.group(2))
    return found


def mutate(paths: list[Path], rng: random.Random) -> dict[str, set[str]]:
    chosen = rng.sample(paths, 200)
    grown, rewritten, deleted = chosen[:50], chosen[50:100], chosen[100:150]
    for p in grown:
        with open(p, "ab") as f:
            f.write(b"appended\n")
    for p in rewritten:
        size = p.stat().st_size
        # Every byte inverted: same size, other content. An empty file cannot do that; it gets content.
        p.write_bytes(p.read_bytes().translate(INVERT) if size else b"now has content\n")
    for p in deleted:
        p.unlink()
    added = [p.with_name(p.stem + "-new.dat") for p in chosen[150:]]
    for p in added:
        p.write_bytes(rng.randbytes(rng.randrange(0, 4096)))
    return {"modified": {str(p) for p in grown + rewritten}, "deleted": {str(p) for p in deleted},
            "created": {str(p) for p in added}}


def dbmon_findings(changes: list) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for c in changes:
        state = c.new or c.old
        if state is not None and state.type == "file":
            out.setdefault(c.type, set()).add(c.path)
    return out


def agreement(expected: dict[str, set[str]], dbmon_stat: dict, dbmon_hash: dict, aide: dict) -> dict:
    aide_files = {"created": aide.get("added_f", set()), "deleted": aide.get("removed_f", set()),
                  "modified": aide.get("changed_f", set())}
    out: dict[str, dict] = {"expected": {k: len(v) for k, v in expected.items()}}
    for name, found in (("dbmon_stat", dbmon_stat), ("dbmon_cold_hash", dbmon_hash), ("aide", aide_files)):
        out[name] = {**{k: len(found.get(k, set())) for k in ("created", "deleted", "modified")},
                     "other": sorted(k for k in found if k not in expected),
                     "matches_expected": all(found.get(k, set()) == v for k, v in expected.items())}
    out["aide_directories_listed"] = {k: len(v) for k, v in aide.items() if not k.endswith("_f")}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the tree is built")
    args = ap.parse_args(argv if argv is not None else [])
    load_before = [round(x, 2) for x in os.getloadavg()]  # a shared machine: say how busy it was
    if not os.access(AIDE, os.X_OK):
        raise SystemExit(f"{AIDE} is needed (apt-get install aide)")
    rng = random.Random(20)
    workdir = Path(tempfile.mkdtemp(prefix="dbmonaide", dir=args.dir))
    try:
        root = workdir / "tree"
        t0 = time.perf_counter()
        paths = build_tree(root, args.files, rng)
        build_s = time.perf_counter() - t0
        conf = aide_conf(workdir, str(root))
        init_wall, init_cpu, _ = run_aide(conf, "init")
        os.replace(workdir / "aide.db.new", workdir / "aide.db")
        t0 = time.perf_counter()
        stat_baseline = scan(ScanSpec(str(root))).states
        stat_baseline_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        hash_baseline = scan(ScanSpec(str(root), hash_content=True)).states
        hash_baseline_s = time.perf_counter() - t0

        timed: dict[str, list[tuple[float, float]]] = {
            "stat_rescan": [], "hash_rescan_reuse": [], "hash_rescan_cold": [], "aide_check": []}
        for r in range(args.runs + 1):  # round 0 warms up and is dropped
            figures = {"stat_rescan": dbmon_rescan(str(root), stat_baseline, False, True)[:2],
                       "hash_rescan_reuse": dbmon_rescan(str(root), hash_baseline, True, True)[:2],
                       "hash_rescan_cold": dbmon_rescan(str(root), hash_baseline, True, False)[:2],
                       "aide_check": run_aide(conf, "check")[:2]}
            if r:
                for name, (wall, cpu) in figures.items():
                    timed[name].append((wall, cpu))
                print(f"round {r}: " + ", ".join(f"{k} {w:.3f} s" for k, (w, _) in figures.items()), flush=True)
        median_wall = {name: round(statistics.median(w for w, _ in xs), 4) for name, xs in timed.items()}
        medians = {name: {"wall_s": median_wall[name], "cpu_s": round(statistics.median(c for _, c in xs), 4),
                          "wall_s_runs": [round(w, 4) for w, _ in xs]} for name, xs in timed.items()}

        expected = mutate(paths, rng)
        stat_changes = dbmon_rescan(str(root), stat_baseline, False, True)[2]
        hash_changes = dbmon_rescan(str(root), hash_baseline, True, False)[2]
        aide_report = run_aide(conf, "check")[2]
        agreed = agreement(expected, dbmon_findings(stat_changes), dbmon_findings(hash_changes),
                           aide_findings(aide_report))
        summary = {k: int(v) for k, v in re.findall(r"^\s*(Added|Removed|Changed) entries:\s+(\d+)", aide_report,
                                                     re.MULTILINE)}
        agreed["aide_summary"] = summary
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    aide_s, stat_s, cold_s = median_wall["aide_check"], median_wall["stat_rescan"], median_wall["hash_rescan_cold"]
    path = write("files_rescan_vs_aide", {
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "what": "rescan of a tree: dbmon tree_scan.scan + compare vs aide --check, same tree, same run",
        "files": args.files, "directories": sum(s.type == "dir" for s in stat_baseline.values()),
        "tree_bytes": sum(s.size for s in stat_baseline.values() if s.type == "file"),
        "tree_parent": args.dir, "build_s": round(build_s, 2), "runs": args.runs,
        "aide": {"version": aide_version(), "rule": "p+i+n+u+g+s+m+sha256", "num_workers": "default (1)",
                 "init_wall_s": round(init_wall, 3), "init_cpu_s": round(init_cpu, 3)},
        "dbmon_baseline_s": {"stat": round(stat_baseline_s, 3), "hashed": round(hash_baseline_s, 3)},
        "timings": medians,
        "aide_vs_stat_rescan": round(aide_s / stat_s, 2), "aide_vs_cold_hash_rescan": round(aide_s / cold_s, 2),
        "target_stat_rescan_s": TARGET_RESCAN_S, "target_ratio": TARGET_RATIO,
        "meets_target": stat_s < TARGET_RESCAN_S and aide_s / stat_s >= TARGET_RATIO,
        "agreement_after_changes": agreed})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
