"""SegmentDataset on a real cleaned dataset: torch DataLoader workers, ranks, shuffling, buckets,
filters, token/label joins; and the same segments through ray.data."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from torch.utils.data import DataLoader

from audiomill import layout, schema
from audiomill.data import DatasetError, LoaderOptions, SegmentDataset, collate_padded
from audiomill.data.buckets import bucket_batches, quantile_boundaries
from audiomill.data.reader import ShardMismatchError


def _index(root) -> pa.Table:
    return pq.read_table(root / layout.INDEX_FILE)


def _tar_audio(root, shard: str, key: str) -> np.ndarray:
    """Independent read: the member by name, through tarfile + soundfile (not the loader's offsets)."""
    with tarfile.open(layout.shard_uri(str(root), shard)) as tar:
        data = tar.extractfile(f"{key}.flac").read()
    pcm, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == schema.SAMPLE_RATE
    return pcm.astype(np.float32) / 32767.0


def _keys(loader) -> list[str]:
    return [key for batch in loader for key in batch[schema.KEY]]


def test_dataloader_with_two_workers_yields_every_segment_once_with_its_audio(licensed_dataset):
    root = licensed_dataset.root
    index = {row[schema.KEY]: row for row in _index(root).to_pylist()}
    dataset = SegmentDataset(str(root), LoaderOptions(seed=3))
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate_padded)
    seen = Counter()
    for batch in loader:
        assert batch[schema.AUDIO].dtype.is_floating_point and batch[schema.AUDIO].ndim == 2
        for row, key in enumerate(batch[schema.KEY]):
            seen[key] += 1
            length = int(batch["audio_lens"][row])
            expected = _tar_audio(root, index[key][schema.SHARD], key)
            np.testing.assert_array_equal(batch[schema.AUDIO][row, :length].numpy(), expected)
            assert batch[schema.AUDIO][row, length:].abs().sum() == 0  # zero padding
            assert length == pytest.approx(index[key][schema.AUDIO_DURATION_S] * schema.SAMPLE_RATE, abs=1)
            assert batch[schema.SOURCE_URI][row] == index[key][schema.SOURCE_URI]
    assert seen == Counter(list(index))  # each kept segment exactly once per epoch


def test_shuffle_is_seeded_per_epoch(licensed_dataset):
    dataset = SegmentDataset(str(licensed_dataset.root), LoaderOptions(seed=7, columns=()))
    orders = []
    for epoch in (0, 0, 1, 2):
        dataset.set_epoch(epoch)
        orders.append([s[schema.KEY] for s in dataset])
    assert orders[0] == orders[1]
    assert sorted(orders[0]) == sorted(orders[2]) == sorted(orders[3])
    assert len({tuple(o) for o in orders}) == 3  # epochs 0, 1, 2 differ
    plain = SegmentDataset(str(licensed_dataset.root), LoaderOptions(shuffle=False, columns=()))
    keys = [s[schema.KEY] for s in plain]
    rows = _index(licensed_dataset.root).sort_by([(schema.SHARD, "ascending"), (schema.TAR_OFFSET, "ascending")])
    assert keys == rows[schema.KEY].to_pylist()


@pytest.mark.parametrize("world_size", [2, 4])  # 3 shards: whole shards for 2 ranks, segments for 4
def test_ranks_and_workers_split_an_epoch_without_overlap(licensed_dataset, world_size):
    shares = []
    for rank in range(world_size):
        options = LoaderOptions(seed=1, rank=rank, world_size=world_size, columns=())
        loader = DataLoader(SegmentDataset(str(licensed_dataset.root), options), batch_size=2,
                            num_workers=2, collate_fn=collate_padded)
        shares.append(_keys(loader))
    everything = [k for share in shares for k in share]
    assert sorted(everything) == sorted(_index(licensed_dataset.root)[schema.KEY].to_pylist())
    assert all(shares)  # nobody idles


def test_duration_buckets_cap_total_seconds_and_group_similar_lengths(licensed_dataset):
    options = LoaderOptions(seed=2, max_batch_s=4.5, num_buckets=2, columns=(schema.AUDIO_DURATION_S,))
    dataset = SegmentDataset(str(licensed_dataset.root), options)
    loader = DataLoader(dataset, batch_size=None, num_workers=2, collate_fn=collate_padded)
    batches = list(loader)
    keys = [k for b in batches for k in b[schema.KEY]]
    assert sorted(keys) == sorted(_index(licensed_dataset.root)[schema.KEY].to_pylist())
    boundary = dataset.boundaries[0]
    assert any(len(b[schema.KEY]) > 1 for b in batches)
    for batch in batches:
        seconds = batch["audio_lens"].numpy() / schema.SAMPLE_RATE
        assert len(seconds) == 1 or seconds.sum() <= 4.5 + 1e-9
        assert len({bool(s >= boundary) for s in batch[schema.AUDIO_DURATION_S].tolist()}) == 1


def test_bucket_batches_units():
    items = [(d, n) for n, d in enumerate([1.0, 5.0, 1.2, 5.5, 0.9, 12.0, 1.1])]
    batches = list(bucket_batches(items, max_batch_s=11.0, boundaries=[3.0]))
    assert batches == [[1, 3], [0, 2, 4, 6], [5]]  # 12 s alone; short ones together
    assert quantile_boundaries([1, 2, 3, 4], 2) == [2.5]
    assert list(bucket_batches(items, 100.0, [], max_batch_size=3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_filters_by_any_index_column(licensed_dataset):
    root = str(licensed_dataset.root)
    index = _index(licensed_dataset.root)
    median = float(np.median(index[schema.Q_SNR_DB].to_numpy()))
    expected = index.filter(pc.greater_equal(index[schema.Q_SNR_DB], median))[schema.KEY].to_pylist()
    dataset = SegmentDataset(root, LoaderOptions(filters=(f"q_snr_db>={median}",), columns=()))
    assert sorted(s[schema.KEY] for s in dataset) == sorted(expected)
    echo = [u for u in index[schema.SOURCE_URI].to_pylist() if u.endswith("echo.wav")][0]
    others = SegmentDataset(root, LoaderOptions(filters=(f"source_uri!={echo}",)))
    assert others.table.num_rows == index.num_rows - 2 and echo not in others.table[schema.SOURCE_URI].to_pylist()
    with pytest.raises(DatasetError, match="no_such_metric"):
        SegmentDataset(root, LoaderOptions(filters=("no_such_metric>1",)))
    with pytest.raises(DatasetError, match="COLUMN OP VALUE"):
        SegmentDataset(root, LoaderOptions(filters=("q_snr_db",)))


def _write(path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_token_and_label_tables_join_by_key(licensed_dataset, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(licensed_dataset.root, root)
    keys = sorted(_index(root)[schema.KEY].to_pylist())
    tokens = [[n, n + 1, n + 2] for n in range(len(keys))]
    half = len(keys) // 2
    _write(root / "tokens" / "semantic@1" / "part-000000.parquet",
           pa.table({schema.KEY: keys[:half], "tokens": tokens[:half]}))
    _write(root / "tokens" / "semantic@1" / "part-000001.parquet",
           pa.table({schema.KEY: keys[half:], "tokens": tokens[half:]}))
    _write(root / "labels" / "round-001" / "accepted.parquet",
           pa.table({schema.KEY: keys[:2], "label_text": ["one", "two"], schema.Q_SNR_DB: [1.0, 2.0]}))
    options = LoaderOptions(tokens=("semantic@1",), labels=("round-001",), shuffle=False)
    samples = {s[schema.KEY]: s for s in SegmentDataset(str(root), options)}
    assert {k: samples[k]["tokens"] for k in keys} == dict(zip(keys, tokens))
    assert [samples[k]["label_text"] for k in keys[:3]] == ["one", "two", None]
    assert samples[keys[1]]["labels_round_001_q_snr_db"] == 2.0  # clashing name gets a prefix
    assert samples[keys[1]][schema.Q_SNR_DB] != 2.0
    labeled = SegmentDataset(str(root), LoaderOptions(labels=("round-001",), filters=("label_text=one,two",)))
    assert sorted(labeled.table[schema.KEY].to_pylist()) == keys[:2]
    with pytest.raises(DatasetError, match="round-009"):
        SegmentDataset(str(root), LoaderOptions(labels=("round-009",)))


def test_index_pointing_at_the_wrong_member_fails_loudly(licensed_dataset, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(licensed_dataset.root, root)
    index = _index(root).sort_by([(schema.SHARD, "ascending"), (schema.TAR_OFFSET, "ascending")])
    assert index[schema.SHARD][0] == index[schema.SHARD][1]
    swapped = {}
    for name in (schema.TAR_OFFSET, schema.FLAC_BYTES):  # rows 0 and 1 point at each other's member
        values = index[name].to_pylist()
        values[0], values[1] = values[1], values[0]
        swapped[name] = pa.array(values, pa.int64())
    for name, values in swapped.items():
        index = index.set_column(index.column_names.index(name), name, values)
    pq.write_table(index, root / layout.INDEX_FILE)
    with pytest.raises(ShardMismatchError, match="expected"):
        list(SegmentDataset(str(root), LoaderOptions(shuffle=False)))


@pytest.mark.slow
def test_ray_data_reads_the_same_segments(licensed_dataset, ray_local):
    from audiomill.execution.ray_data import segment_ray_dataset
    from audiomill.execution.ray_session import ray_session

    root = licensed_dataset.root
    index = {row[schema.KEY]: row for row in _index(root).to_pylist()}
    with ray_session():
        dataset = segment_ray_dataset(str(root), LoaderOptions(filters=("audio_duration_s>0",), seed=4))
        rows = dataset.take_all()
    assert sorted(r[schema.KEY] for r in rows) == sorted(index)
    for row in rows:
        np.testing.assert_array_equal(np.asarray(row[schema.AUDIO], np.float32),
                                      _tar_audio(root, index[row[schema.KEY]][schema.SHARD], row[schema.KEY]))
        assert row[schema.Q_SNR_DB] == index[row[schema.KEY]][schema.Q_SNR_DB]
