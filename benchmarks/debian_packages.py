"""Fetch Debian packages by exact name and version and unpack them (real recordings for the
benchmarks' evaluation sets; nothing is committed and nothing is installed system-wide).

``apt-get download NAME=VERSION`` into ``ROOT/debs`` (skipped when the .deb is there), then
``dpkg-deb -x`` into ``ROOT/pkgs`` (skipped when that package's marker is there).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def fetch_debs(packages: dict[str, str], root: Path) -> Path:
    """Download and unpack every ``{name: version}`` under ``root``; returns the unpacked tree."""
    debs, tree = root / "debs", root / "pkgs"
    debs.mkdir(parents=True, exist_ok=True)
    tree.mkdir(parents=True, exist_ok=True)
    for name, version in packages.items():
        found = sorted(debs.glob(f"{name}_*.deb"))
        if not found:
            subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=debs, check=True)
            found = sorted(debs.glob(f"{name}_*.deb"))
        marker = tree / f".unpacked-{name}-{version}"
        if not marker.is_file():
            subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(tree)], check=True)
            marker.touch()
    return tree
