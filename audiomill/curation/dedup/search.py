"""One edge search's inputs, shared by the in-process and the Ray Data implementation."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from audiomill import schema, storage
from audiomill.curation.dedup import index_store
from audiomill.curation.dedup.edges import MatchOptions
from audiomill.curation.dedup.features import conform_features
from audiomill.formats.tables import read_num_rows, read_table


@dataclass(frozen=True)
class EdgeSearch:
    """Where the features are: this run's part files and other runs' index files, and the match
    options. Nothing is read up front: the Ray search reads the files on its workers, so the
    driver never holds the window signatures (2.5 GB for 10M of them)."""

    feature_uris: list[str]
    index_uris: list[str]
    opts: MatchOptions
    num_perm: int

    def rows(self) -> int:
        """Feature rows in all files (from parquet footers)."""
        return sum(read_num_rows(u) for u in [*self.feature_uris, *self.index_uris] if storage.exists(u))

    def all_features(self) -> pa.Table:
        """This run's features plus every other run's, read here (for the in-process search)."""
        tables = [read_part_features(u, self.num_perm) for u in self.feature_uris]
        tables += [index_store.read_run_file(u, self.num_perm) for u in self.index_uris]
        return pa.concat_tables(tables) if tables else read_part_features("", self.num_perm)


def read_part_features(uri: str, num_perm: int) -> pa.Table:
    """A part's features in the common shape; a missing file (part had no segments) is empty."""
    table = read_table(uri) if storage.exists(uri) else pa.table({schema.KEY: pa.array([], pa.string())})
    return conform_features(table, num_perm, external=False)
