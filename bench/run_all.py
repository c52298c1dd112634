"""Run every benchmark module in bench/ (each has a main())."""

from __future__ import annotations

import importlib
import pkgutil

import bench

SKIP = {"stats", "run_all", "alerting_common"}


def main() -> None:
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if info.name in SKIP:
            continue
        print(f"== {info.name}")
        importlib.import_module(f"bench.{info.name}").main()


if __name__ == "__main__":
    main()
