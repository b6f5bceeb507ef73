"""Attribute heads: one small torch MLP over a clip's feature vector, one softmax per field.

Input: pooled Whisper encoder states (mean + std), the Resemblyzer speaker embedding and the
acoustic measures (``measures.Measures.vector``), standardised with the training set's mean/std.
Output: class probabilities for each field in ``LEARNED_FIELDS``. Saved as ``heads.json``
(architecture, classes, normalisation) + ``heads.bin`` (float32 tensors, state-dict order), so
the same weights always give the same bytes (no pickle, no zip timestamps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiomill import schema
from audiomill.annotation import CLASSES
from audiomill.models.tensor_files import load_state, save_state

LEARNED_FIELDS = (schema.ANN_GENDER, schema.ANN_AGE_BAND, schema.ANN_STYLE, schema.ANN_SCENE,
                  schema.ANN_NOISE_TYPE, schema.ANN_SNR_BAND)
HEADS_JSON = "heads.json"
HEADS_BIN = "heads.bin"
IGNORE = -1  # label index of an unknown answer (no loss)


class HeadsNet(nn.Module):
    def __init__(self, in_dim: int, hidden: int, fields: tuple[str, ...]) -> None:
        super().__init__()
        self.fields = fields
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(0.1))
        self.outputs = nn.ModuleList(nn.Linear(hidden, len(CLASSES[f])) for f in fields)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.trunk(x)
        return [head(h) for head in self.outputs]


@dataclass
class AttributeHeads:
    """Trained heads plus the normalisation they expect."""

    net: HeadsNet
    mean: np.ndarray
    std: np.ndarray

    @property
    def fields(self) -> tuple[str, ...]:
        return self.net.fields

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Field -> (clips, classes) probabilities for (clips, dim) features."""
        x = torch.from_numpy(((features - self.mean) / self.std).astype(np.float32))
        self.net.eval()
        with torch.no_grad():
            logits = self.net(x)
        return {f: torch.softmax(out, dim=1).numpy().astype(np.float64) for f, out in zip(self.fields, logits)}

    def save(self, directory: str | Path) -> None:
        meta = {"in_dim": int(self.mean.size), "hidden": int(self.net.trunk[0].out_features),
                "fields": list(self.fields), "classes": {f: list(CLASSES[f]) for f in self.fields},
                "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}
        save_state(directory, HEADS_JSON, HEADS_BIN, meta, self.net.state_dict())

    @classmethod
    def load(cls, directory: str | Path) -> AttributeHeads:
        meta, state = load_state(directory, HEADS_JSON, HEADS_BIN,
                                 "run a round (`audiomill round run`) to train the heads")
        for name in meta["fields"]:
            if meta["classes"][name] != list(CLASSES[name]):
                raise ValueError(f"{directory}: classes of {name} differ from this audiomill's schema")
        net = HeadsNet(meta["in_dim"], meta["hidden"], tuple(meta["fields"]))
        net.load_state_dict(state)
        return cls(net, np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32))


def encode_labels(rows: list[dict[str, str | None]], fields: tuple[str, ...] = LEARNED_FIELDS) -> np.ndarray:
    """(clips, fields) int64 class indices; ``IGNORE`` where a row has no (known) answer."""
    out = np.full((len(rows), len(fields)), IGNORE, np.int64)
    for i, row in enumerate(rows):
        for j, name in enumerate(fields):
            value = row.get(name)
            if value in CLASSES[name]:
                out[i, j] = CLASSES[name].index(value)
    return out
