"""Rewrite the advisory snapshot for the packages of the lock file.

    python -m tools.refresh_advisories                      # from the OSV API (api.osv.dev)
    python -m tools.refresh_advisories --pypa-db ~/src/advisory-database   # offline, from a checkout
                                                            # of github.com/pypa/advisory-database

Every advisory for a locked package is kept, not only those affecting the pinned version, so a
later downgrade to a vulnerable pin is still caught offline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import requests
import yaml
from packaging.utils import canonicalize_name

from tools.advisory_snapshot import DEFAULT_LOCK, DEFAULT_SNAPSHOT
from tools.locked_set import LockError, read_lock
from tools.osv_ranges import ECOSYSTEM

OSV_URL = "https://api.osv.dev"
BATCH = 500  # querybatch accepts up to 1,000 queries


class SourceUnavailable(RuntimeError):
    pass


def from_osv(packages: list[str], base_url: str = OSV_URL, timeout: float = 20.0) -> list[dict]:
    session = requests.Session()
    ids: set[str] = set()
    try:
        for start in range(0, len(packages), BATCH):
            queries = [{"package": {"name": p, "ecosystem": ECOSYSTEM}} for p in packages[start:start + BATCH]]
            while queries:
                resp = session.post(f"{base_url}/v1/querybatch", json={"queries": queries}, timeout=timeout)
                resp.raise_for_status()
                results = resp.json().get("results") or []
                follow = []
                for query, result in zip(queries, results, strict=False):
                    ids.update(v["id"] for v in result.get("vulns") or [])
                    if result.get("next_page_token"):
                        follow.append({**query, "page_token": result["next_page_token"]})
                queries = follow
        records = []
        for vuln_id in sorted(ids):
            resp = session.get(f"{base_url}/v1/vulns/{vuln_id}", timeout=timeout)
            resp.raise_for_status()
            records.append(resp.json())
        return records
    except (requests.RequestException, ValueError) as exc:
        raise SourceUnavailable(f"OSV API at {base_url} unavailable: {exc}") from None


def from_pypa_checkout(root: Path, packages: list[str]) -> list[dict]:
    vulns = Path(root) / "vulns"
    if not vulns.is_dir():
        raise SourceUnavailable(f"{root}: no vulns/ directory; expected a checkout of pypa/advisory-database")
    wanted = {canonicalize_name(p) for p in packages}
    records = []
    for folder in sorted(vulns.iterdir()):
        if folder.is_dir() and canonicalize_name(folder.name) in wanted:
            for path in sorted(folder.glob("*.yaml")):
                records.append(yaml.safe_load(path.read_text()))
    return records


def slim(record: dict, packages: set[str]) -> dict:
    """Only what the checker and a reader need, for the locked packages only."""
    affected = []
    for entry in record.get("affected") or []:
        pkg = entry.get("package") or {}
        if pkg.get("ecosystem") != ECOSYSTEM or canonicalize_name(str(pkg.get("name", ""))) not in packages:
            continue
        ranges = [r for r in entry.get("ranges") or [] if r.get("type") in ("ECOSYSTEM", "SEMVER")]
        item = {"package": {"ecosystem": ECOSYSTEM, "name": pkg["name"]}, "ranges": ranges}
        if not ranges:
            item["versions"] = [str(v) for v in entry.get("versions") or []]
        affected.append(item)
    summary = record.get("summary") or str(record.get("details") or "").strip().split("\n", 1)[0][:200]
    return {"id": record["id"], "aliases": sorted(record.get("aliases") or []), "summary": summary,
            "modified": str(record.get("modified", "")), "affected": affected}


def build(lock: Path, records: list[dict], source: str) -> dict:
    packages = set(read_lock(lock))
    kept = [slim(r, packages) for r in records if isinstance(r, dict) and r.get("id")]
    kept = [r for r in kept if r["affected"] and not r["id"].startswith("MAL-")]
    return {
        "generated": datetime.now(timezone.utc).date().isoformat(),
        "source": source,
        "lock_sha256": hashlib.sha256(Path(lock).read_bytes()).hexdigest(),
        "refresh": "python -m tools.refresh_advisories [--pypa-db PATH]",
        "vulns": sorted(kept, key=lambda r: r["id"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the OSV advisory snapshot for the locked packages.")
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK)
    parser.add_argument("--out", type=Path, default=DEFAULT_SNAPSHOT)
    parser.add_argument("--pypa-db", type=Path, help="a local checkout of github.com/pypa/advisory-database")
    parser.add_argument("--osv-url", default=OSV_URL)
    args = parser.parse_args(argv)
    try:
        packages = sorted(read_lock(args.lock))
        if args.pypa_db:
            records, source = from_pypa_checkout(args.pypa_db, packages), f"pypa/advisory-database ({args.pypa_db})"
        else:
            records, source = from_osv(packages, args.osv_url), args.osv_url
        doc = build(args.lock, records, source)
    except (LockError, SourceUnavailable, OSError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, SourceUnavailable) and not args.pypa_db:
            print("hint: pass --pypa-db PATH with a checkout of github.com/pypa/advisory-database", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    print(f"{args.out}: {len(doc['vulns'])} advisories for {len(packages)} locked packages from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
