"""Byte-level comparison of two datasets, minus what legitimately differs between runs (creation
time, wall and worker seconds). Used to show a refactor or an optimisation changes no output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VOLATILE_MANIFEST_KEYS = ("created_unix", "wall_s", "stages", "curated")
_COMPARED = ("shards", "held", "index.parquet", "rejects.parquet", "dedup.parquet")


def stable_manifest(path: Path) -> dict[str, Any]:
    """The manifest without times, and with its config's output path blanked."""
    manifest = json.loads(path.read_text())
    for key in VOLATILE_MANIFEST_KEYS:
        manifest.pop(key, None)
    manifest.get("config", {}).pop("output", None)
    return manifest


def dataset_differences(a: Path, b: Path) -> list[str]:
    """Every file (shards, held audio, tables) whose bytes differ, and every manifest key whose
    value differs; empty when the two datasets are the same output."""
    problems = []
    for name in _COMPARED:
        files_a = sorted(p.relative_to(a) for p in (a / name).rglob("*") if p.is_file()) if (a / name).is_dir() \
            else ([Path(name)] if (a / name).exists() else [])
        files_b = sorted(p.relative_to(b) for p in (b / name).rglob("*") if p.is_file()) if (b / name).is_dir() \
            else ([Path(name)] if (b / name).exists() else [])
        if files_a != files_b:
            problems.append(f"{name}: files differ: {sorted(set(map(str, files_a)) ^ set(map(str, files_b)))}")
            continue
        problems += [f"{rel}: bytes differ" for rel in files_a if (a / rel).read_bytes() != (b / rel).read_bytes()]
    ma, mb = stable_manifest(a / "manifest.json"), stable_manifest(b / "manifest.json")
    problems += [f"manifest.{key}: {ma.get(key)!r} != {mb.get(key)!r}"[:300]
                 for key in sorted(set(ma) | set(mb)) if ma.get(key) != mb.get(key)]
    return problems
