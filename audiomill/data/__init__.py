"""Training-side reading of audiomill datasets: a torch IterableDataset with shard shuffling,
rank/worker splitting, duration bucketing, filters and token/label joins (``dataset.py``).

Names are imported lazily so that importing ``audiomill.data.tables`` (exports, the CLI) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"LoaderOptions": "dataset", "SegmentDataset": "dataset", "collate_padded": "dataset",
            "ColumnFilter": "tables", "DatasetError": "tables", "load_segments": "tables", "parse_filter": "tables"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'audiomill.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"audiomill.data.{_EXPORTS[name]}"), name)
