"""The dedup edge search as Ray Data operations over feature files (explode -> groupby -> join ->
verify); only verified edges come back to the driver. Same functions, same edges as
``curation.dedup.edges.local_edges``."""

from __future__ import annotations

import pyarrow as pa

from audiomill.curation.dedup import edges as E
from audiomill.curation.dedup import index_store
from audiomill.curation.dedup.search import EdgeSearch, read_part_features


def ray_edges(ray, search: EdgeSearch) -> pa.Table:  # noqa: ANN001 - the ray module of a session
    """One block per feature file, shuffles sized to the job (one partition per ~64 files)."""
    opts, num_perm = search.opts, search.num_perm
    items = ([{"uri": u, "external": False} for u in search.feature_uris]
             + [{"uri": u, "external": True} for u in search.index_uris])
    if not items or not opts.kinds:
        return E.EDGE_SCHEMA.empty_table()
    partitions = max(1, min(16, len(items) // 64 + 1))
    features = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _load_batch, fn_kwargs={"num_perm": num_perm}, batch_size=None, batch_format="pyarrow")
    pairs = (features.map_batches(E.explode, fn_kwargs={"opts": opts}, batch_size=None, batch_format="pyarrow")
             .groupby([E.KIND, E.BAND_KEY], num_partitions=partitions)
             .map_groups(E.bucket_pairs, fn_kwargs={"max_bucket": opts.max_bucket}, batch_format="pyarrow")
             .materialize())
    if pairs.count() == 0:
        return E.EDGE_SCHEMA.empty_table()
    joined = pairs.groupby([E.KIND, E.KEY_A, E.KEY_B], num_partitions=partitions).count().select_columns(
        [E.KIND, E.KEY_A, E.KEY_B])
    for side in ("a", "b"):
        side_table = features.map_batches(E.side_columns, fn_kwargs={"side": side}, batch_size=None,
                                          batch_format="pyarrow")
        joined = joined.join(side_table, join_type="inner", num_partitions=partitions, on=(f"key_{side}",))
    verified = joined.map_batches(E.verify, fn_kwargs={"opts": opts}, batch_size=None, batch_format="pyarrow")
    tables = [t for t in verified.iter_batches(batch_size=None, batch_format="pyarrow") if t.num_rows]
    return pa.concat_tables(tables) if tables else E.EDGE_SCHEMA.empty_table()


def _load_batch(batch: pa.Table, num_perm: int) -> pa.Table:
    tables = []
    for uri, external in zip(batch["uri"].to_pylist(), batch["external"].to_pylist()):
        tables.append(index_store.read_run_file(uri, num_perm) if external else read_part_features(uri, num_perm))
    return pa.concat_tables(tables)
