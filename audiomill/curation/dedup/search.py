"""One edge search's inputs, shared by the in-process and the Ray Data implementation."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from audiomill import schema, storage
from audiomill.curation.dedup import index_store
from audiomill.curation.dedup.edges import MatchOptions
from audiomill.curation.dedup.features import conform_features
from audiomill.formats.tables import read_table


@dataclass(frozen=True)
class EdgeSearch:
    """This run's features (read once, in memory), the URIs of the same files and of other runs'
    index files (for distributed reads), and the match options."""

    features: pa.Table
    feature_uris: list[str]
    index_uris: list[str]
    opts: MatchOptions
    num_perm: int

    def all_features(self) -> pa.Table:
        """This run's features plus every other run's (for the in-process search)."""
        external = [index_store.read_run_file(u, self.num_perm) for u in self.index_uris]
        return pa.concat_tables([self.features, *external]) if external else self.features


def read_part_features(uri: str, num_perm: int) -> pa.Table:
    """A part's features in the common shape; a missing file (part had no segments) is empty."""
    table = read_table(uri) if storage.exists(uri) else pa.table({schema.KEY: pa.array([], pa.string())})
    return conform_features(table, num_perm, external=False)
