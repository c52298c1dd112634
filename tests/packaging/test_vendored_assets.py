"""The vendored chart library is the pinned release, byte for byte, and ships in the package."""

from __future__ import annotations

import hashlib

from monitor_app.platform.package_files import static_dir

PINNED = {
    "vendor/uplot-1.6.32/uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "vendor/uplot-1.6.32/uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
}


def test_the_vendored_files_are_the_pinned_release():
    for relative, digest in PINNED.items():
        assert hashlib.sha256((static_dir() / relative).read_bytes()).hexdigest() == digest, relative
    assert "MIT" in (static_dir() / "vendor/uplot-1.6.32/LICENSE").read_text()
