"""Training-side reading of audiomill datasets: a torch IterableDataset with shard shuffling,
rank/worker splitting, duration bucketing, filters and token/label joins (``dataset.py``)."""

from audiomill.data.dataset import LoaderOptions, SegmentDataset, collate_padded
from audiomill.data.tables import ColumnFilter, DatasetError, load_segments, parse_filter

__all__ = ["ColumnFilter", "DatasetError", "LoaderOptions", "SegmentDataset", "collate_padded",
           "load_segments", "parse_filter"]
