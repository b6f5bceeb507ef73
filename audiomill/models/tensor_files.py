"""Small torch models saved without pickle: a JSON file (architecture + tensor shapes) and a raw
little-endian float32 file (tensors in state-dict order), so the same weights give the same bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch


def save_state(directory: str | Path, json_name: str, bin_name: str, meta: dict[str, Any],
               state: dict[str, torch.Tensor]) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().numpy().astype("<f4") for k, v in state.items()}
    meta = {**meta, "tensors": [[k, list(v.shape)] for k, v in tensors.items()]}
    (directory / json_name).write_text(json.dumps(meta, sort_keys=True))
    (directory / bin_name).write_bytes(b"".join(v.tobytes() for v in tensors.values()))


def load_state(directory: str | Path, json_name: str, bin_name: str,
               missing: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(meta, state dict); ``missing`` is the error's hint when the files are not there."""
    directory = Path(directory)
    if not (directory / json_name).is_file() or not (directory / bin_name).is_file():
        raise FileNotFoundError(f"{directory} holds no {json_name} + {bin_name}; {missing}")
    meta = json.loads((directory / json_name).read_text())
    raw = np.frombuffer((directory / bin_name).read_bytes(), dtype="<f4")
    needed = sum(int(np.prod(shape)) for _, shape in meta["tensors"])
    if needed != raw.size:
        raise ValueError(f"{directory / bin_name}: {raw.size} floats, the shapes in {json_name} need {needed}")
    state, offset = {}, 0
    for name, shape in meta["tensors"]:
        size = int(np.prod(shape))
        state[name] = torch.from_numpy(raw[offset:offset + size].reshape(shape).copy())
        offset += size
    return meta, state
