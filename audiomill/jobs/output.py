"""What a job may do to its ``--out``: refuse a file, refuse another job's dataset, or clear it.

A dataset belongs to the job that made it, identified by its input list (``_parts/_JOB.json``,
or the finished manifest's ``config.inputs``). Rerunning the same inputs resumes (changed
settings redo the parts they affect); other inputs into the same directory are refused unless
``--overwrite``, which removes the old dataset first so none of its parts, shards or tables can
be reused or left behind.
"""

from __future__ import annotations

import json
import os

from audiomill import layout, storage
from audiomill.config import CleanConfig, ConfigError

_DATASET_ENTRIES = (layout.SHARDS_DIR, layout.HELD_DIR, layout.PARTS_DIR, layout.INDEX_FILE,
                    layout.REJECTS_FILE, layout.DEDUP_FILE, layout.MANIFEST_FILE)


class OutputInUseError(ConfigError):
    """``--out`` holds a dataset made from other inputs (or is not a directory)."""


def recorded_inputs(root: str) -> list[str] | None:
    """The (redacted) inputs of the dataset at ``root``, or None if there is none."""
    for uri, pick in ((layout.job_uri(root), lambda d: d.get("inputs")),
                      (storage.join(root, layout.MANIFEST_FILE), lambda d: (d.get("config") or {}).get("inputs"))):
        try:
            data = json.loads(storage.read_text(uri))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except json.JSONDecodeError:
            raise OutputInUseError(f"{storage.redact(uri)} is not valid JSON; remove it or pass --overwrite") from None
        inputs = pick(data) if isinstance(data, dict) else None
        if isinstance(inputs, list):
            return [str(u) for u in inputs]
    return None


def check_output(cfg: CleanConfig, overwrite: bool = False) -> None:
    """Raise OutputInUseError when ``cfg.output`` cannot take this job (checked before any work)."""
    local = storage.local_path(cfg.output)
    if local is not None and os.path.exists(local) and not os.path.isdir(local):
        raise OutputInUseError(f"--out {local} is a file, not a directory")
    if overwrite:
        return
    recorded = recorded_inputs(cfg.output)
    wanted = [storage.redact(u) for u in cfg.inputs]
    if recorded is not None and recorded != wanted:
        raise OutputInUseError(
            f"{storage.redact(cfg.output)} holds a dataset made from other inputs ({', '.join(recorded[:3])}"
            f"{', ...' if len(recorded) > 3 else ''}); choose another --out, or pass --overwrite to replace it")


def claim_output(cfg: CleanConfig, overwrite: bool = False) -> None:
    """Start the job on ``cfg.output``: clear it first with ``overwrite``, then record the inputs."""
    if overwrite:
        for name in _DATASET_ENTRIES:
            storage.delete_prefix(storage.join(cfg.output, name))
    storage.write_text(layout.job_uri(cfg.output),
                       json.dumps({"inputs": [storage.redact(u) for u in cfg.inputs]}, indent=2))
