"""The advisory snapshot kept in the repository, and checking a lock file against it offline.

The snapshot (tools/osv-snapshot.json) holds OSV records for the packages of the lock, so
CI still fails on a known-vulnerable pin when no advisory service can be reached. Refresh it
with `python -m tools.refresh_advisories` (see docs/security.md).

    python -m tools.advisory_snapshot [--lock requirements.lock] [--snapshot tools/osv-snapshot.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.locked_set import LockError, read_lock
from tools.osv_ranges import affects, fixed_versions

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOCK = ROOT / "requirements.lock"
DEFAULT_SNAPSHOT = ROOT / "tools" / "osv-snapshot.json"


class SnapshotError(ValueError):
    pass


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]
    summary: str

    def line(self) -> str:
        also = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fix = f"; fixed in {', '.join(self.fixed)}" if self.fixed else "; no fixed version"
        return f"{self.package}=={self.version}: {self.advisory}{also}{fix} - {self.summary}"


def load_snapshot(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{path}: cannot read the advisory snapshot: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("vulns"), list):
        raise SnapshotError(f"{path}: vulns: expected a list of OSV records")
    for i, record in enumerate(doc["vulns"]):
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise SnapshotError(f"{path}: vulns[{i}].id: every OSV record needs an id")
    return doc


def check(pins: dict[str, str], records: list[dict]) -> list[Finding]:
    findings = []
    for record in records:
        for name, version in pins.items():
            if affects(record, name, version):
                findings.append(Finding(name, version, record["id"], tuple(record.get("aliases") or ()),
                                        tuple(fixed_versions(record, name)), str(record.get("summary", ""))[:200]))
    return sorted(findings, key=lambda f: (f.package, f.advisory))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a lock file against the advisory snapshot, offline.")
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK)
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT)
    args = parser.parse_args(argv)
    try:
        pins = read_lock(args.lock)
        snapshot = load_snapshot(args.snapshot)
    except (LockError, SnapshotError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    findings = check(pins, snapshot["vulns"])
    for finding in findings:
        print(f"VULNERABLE {finding.line()}")
    print(f"advisory snapshot of {snapshot.get('generated', '?')} ({len(snapshot['vulns'])} records): "
          f"{len(findings)} known vulnerabilities in {len(pins)} locked packages")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
