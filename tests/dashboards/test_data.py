"""The dashboard's data-access layer against numbers computed directly from the parquet files."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema
from audiomill.audio import decode_flac
from audiomill.dashboards import data, queries
from audiomill.data import ranged_read
from audiomill.dashboards.data import Rule

POLICY_REJECTED = 3  # curated_dataset (conftest) moves the 3 lowest-SNR kept segments to rejects
TOKEN_MODEL = "speech-tokens@2"  # curated_dataset's token set (conftest)


@pytest.fixture(scope="module")
def ds(clean_dataset: Path) -> data.Dataset:
    return data.open_dataset(str(clean_dataset))


@pytest.fixture(scope="module")
def curated(curated_dataset: Path) -> data.Dataset:
    return data.open_dataset(str(curated_dataset))


def _index(root: Path):
    return pq.read_table(root / layout.INDEX_FILE)


def test_overview_matches_index_and_manifest(ds, clean_dataset):
    index = _index(clean_dataset)
    manifest = json.loads((clean_dataset / layout.MANIFEST_FILE).read_text())
    numbers = queries.overview(ds)
    assert numbers["segments"] == index.num_rows == manifest["counts"]["segments"]
    seconds = pc.sum(index[schema.AUDIO_DURATION_S]).as_py()
    assert numbers["hours_out"] == pytest.approx(seconds / 3600, rel=1e-12)
    assert numbers["hours_out"] == pytest.approx(manifest["hours_out"], rel=1e-9)
    assert numbers["kept_sources"] == len(set(index[schema.SOURCE_ID].to_pylist())) == manifest["counts"]["kept_sources"]
    assert numbers["shards"] == len(set(index[schema.SHARD].to_pylist())) == manifest["counts"]["shards"] > 1
    assert numbers["kept_hours_ratio"] == pytest.approx(numbers["hours_out"] / manifest["hours_in"])
    stages = queries.stage_throughput(ds)
    assert set(stages["stage"]) == set(manifest["stages"])
    assert stages.filter(pl.col("stage") == "vad")["x_realtime"].item() == manifest["stages"]["vad"]["x_realtime_per_worker"]


def test_metric_columns_are_discovered_not_hard_coded(ds, curated):
    plain = data.metric_columns(ds.index_schema())
    assert plain[0] == schema.AUDIO_DURATION_S
    assert {schema.VAD_SPEECH_RATIO, schema.VAD_SEGMENT_SPEECH_RATIO} <= set(plain)
    assert not set(plain) & {schema.TAR_OFFSET, schema.FLAC_BYTES, schema.PART_ID, schema.START_S, schema.SOURCE_BYTES}
    extended = data.metric_columns(curated.index_schema())
    assert set(plain) < set(extended) and {"q_snr_db", "asr_avg_logprob"} <= set(extended)
    assert data.text_columns(curated.index_schema(), data.LANGUAGE_HINT) == ["asr_language"]
    assert data.transcript_column(curated.index_schema()) == "asr_text"
    assert data.transcript_column(ds.index_schema()) is None


def test_histograms_count_every_finite_value(curated, curated_dataset):
    index = pl.read_parquet(curated_dataset / layout.INDEX_FILE)
    rejects = pl.read_parquet(curated_dataset / layout.REJECTS_FILE)
    metrics = data.metric_columns(curated.index_schema())
    frames = queries.histograms(curated, metrics, bins=10)
    # a metric with no finite value has no histogram: q_mos* when the 5 % MOS sample (by key hash,
    # and keys hash the corpus's temp path) picks none of the ~30 segments, about one run in five
    finite = {m for m in metrics if any(t[m].drop_nulls().drop_nans().len() for t in (index, rejects)
                                         if m in t.columns)}
    assert set(frames) == finite and schema.Q_SNR_DB in finite
    for metric, frame in frames.items():
        kept = frame.filter(pl.col("status") == "kept")
        assert kept["count"].sum() == index[metric].drop_nulls().drop_nans().len(), metric
        lows = [index[metric].min(), rejects[metric].min() if metric in rejects.columns else None]
        assert frame["bin_start"].min() == pytest.approx(min(v for v in lows if v is not None))
    duration = frames[schema.AUDIO_DURATION_S].filter(pl.col("status") == "kept")
    assert duration["hours"].sum() == pytest.approx(index[schema.AUDIO_DURATION_S].sum() / 3600)
    snr = frames["q_snr_db"].filter(pl.col("status") == "rejected")  # policy rejects carry the metric
    assert snr["count"].sum() == rejects["q_snr_db"].drop_nulls().drop_nans().len() >= POLICY_REJECTED


def test_constant_metric_gets_one_zero_width_bin(tmp_path):
    _write_dataset(tmp_path, pl.DataFrame({schema.KEY: ["a", "b", "c"], schema.SHARD: ["shard-0.tar"] * 3,
                                           schema.SOURCE_ID: ["s"] * 3, schema.AUDIO_DURATION_S: [1.0, 2.0, 4.0],
                                           "q_clipping_ratio": [0.0, 0.0, None]}))
    frames = queries.histograms(data.open_dataset(str(tmp_path)), [schema.AUDIO_DURATION_S, "q_clipping_ratio"], bins=3)
    assert frames["q_clipping_ratio"].select("bin_start", "bin_end", "count").rows() == [(0.0, 0.0, 2)]
    assert frames[schema.AUDIO_DURATION_S]["count"].to_list() == [1, 1, 1]


def test_metric_summary_matches_numpy(ds, clean_dataset):
    values = _index(clean_dataset)[schema.VAD_SPEECH_RATIO].to_numpy()
    row = queries.metric_summary(ds).filter(pl.col("metric") == schema.VAD_SPEECH_RATIO).row(0, named=True)
    assert row["count"] == values.size
    assert row["mean"] == pytest.approx(values.mean())
    assert row["median"] == pytest.approx(np.median(values))
    assert (row["min"], row["max"]) == (values.min(), values.max())


def test_rejects_by_reason_matches_rejects_parquet(ds, clean_dataset):
    rejects = pl.read_parquet(clean_dataset / layout.REJECTS_FILE)
    table = queries.rejects_by_reason(ds)
    expected = rejects.group_by(schema.REJECT_REASON).len()
    assert dict(zip(table[schema.REJECT_REASON], table["rows"])) == dict(zip(expected[schema.REJECT_REASON], expected["len"]))
    no_speech = table.filter(pl.col(schema.REJECT_REASON) == "no_speech").row(0, named=True)
    expected_s = rejects.filter(pl.col(schema.REJECT_REASON) == "no_speech")[schema.ORIG_DURATION_S].sum()
    assert no_speech["hours"] == pytest.approx(expected_s / 3600)
    examples = queries.reject_examples(ds, "decode", None, 100)
    assert examples.height == rejects.filter(pl.col(schema.REJECT_STAGE) == "decode").height


def test_segment_rejects_count_their_own_duration(curated, curated_dataset):
    rejects = pl.read_parquet(curated_dataset / layout.REJECTS_FILE)
    row = queries.rejects_by_reason(curated).filter(pl.col(schema.REJECT_REASON) == "policy").row(0, named=True)
    moved = rejects.filter(pl.col(schema.REJECT_REASON) == "policy")
    assert row["rows"] == row["segments"] == moved.height >= POLICY_REJECTED
    assert row["hours"] == pytest.approx(moved[schema.AUDIO_DURATION_S].sum() / 3600)  # not the source's


def test_shard_table_matches_index_and_manifest(ds, clean_dataset):
    index = pl.read_parquet(clean_dataset / layout.INDEX_FILE)
    manifest = json.loads((clean_dataset / layout.MANIFEST_FILE).read_text())
    table = queries.shard_table(ds)
    by_shard = index.group_by(schema.SHARD).agg(pl.len(), pl.col(schema.VAD_SPEECH_RATIO).mean())
    assert table.height == by_shard.height == len(manifest["shards"])
    for shard in manifest["shards"]:
        row = table.filter(pl.col(schema.SHARD) == shard["name"]).row(0, named=True)
        expected = by_shard.filter(pl.col(schema.SHARD) == shard["name"]).row(0, named=True)
        assert (row["samples"], row["bytes"], row["sha256"]) == (expected["len"], shard["bytes"], shard["sha256"])
        assert row[f"mean_{schema.VAD_SPEECH_RATIO}"] == pytest.approx(expected[schema.VAD_SPEECH_RATIO])


def test_shard_outliers_flag_the_odd_shard(tmp_path):
    rng = np.random.default_rng(1)
    shards = np.repeat([f"shard-000000-{i:03d}.tar" for i in range(8)], 50)
    snr = rng.normal(20, 1, shards.size)
    snr[shards == "shard-000000-005.tar"] -= 15  # one shard of much noisier audio
    _write_dataset(tmp_path, pl.DataFrame({schema.KEY: [f"k{i}" for i in range(shards.size)], schema.SHARD: shards,
                                           schema.SOURCE_ID: [f"s{i}" for i in range(shards.size)],
                                           schema.AUDIO_DURATION_S: rng.uniform(2, 4, shards.size), "q_snr_db": snr}))
    table = queries.shard_table(data.open_dataset(str(tmp_path)))
    flagged = table.filter(pl.col("outliers") != "")
    assert flagged[schema.SHARD].to_list() == ["shard-000000-005.tar"]
    assert flagged["outliers"].item() == "mean_q_snr_db"


def test_filter_segments_matches_direct_filter(curated, curated_dataset):
    index = pl.read_parquet(curated_dataset / layout.INDEX_FILE)
    median = float(index[schema.AUDIO_DURATION_S].median())
    spec = queries.SegmentFilter(ranges=((schema.AUDIO_DURATION_S, median, None),), values=(("asr_language", ("en", "de")),),
                                 sort_by="q_snr_db", descending=True)
    total, rows = queries.filter_segments(curated, spec, limit=5)
    expected = index.filter((pl.col(schema.AUDIO_DURATION_S) >= median) & pl.col("asr_language").is_in(["en", "de"]))
    assert 0 < total == expected.height < index.height
    assert rows["key"].to_list() == expected.sort(["q_snr_db", "key"], descending=[True, False])["key"].head(5).to_list()
    assert queries.filter_segments(curated, queries.SegmentFilter(), limit=1)[0] == index.height
    rejected_total, rejected = queries.filter_segments(curated, queries.SegmentFilter(rejected=True), limit=50)
    rejects = pl.read_parquet(curated_dataset / layout.REJECTS_FILE)
    assert rejected_total == rejects[schema.KEY].drop_nulls().len() >= POLICY_REJECTED  # sources without keys excluded
    assert set(queries.top_values(curated, "asr_language")) == set(index["asr_language"].unique())


def test_policy_rules_read_the_recorded_policy_section():
    recorded = {"policy": {"name": "p", "source": "p.yaml", "digest": "0" * 16,
                           "rules": {"q_snr_db": {"min": 10}, "audio_duration_s": {"min": 1, "max": 30.0}}}}
    assert data.policy_rules(recorded) == [Rule("q_snr_db", "q_snr_db", 10.0, None),
                                           Rule("audio_duration_s", "audio_duration_s", 1.0, 30.0)]
    for absent in ({}, {"policy": None}, {"policy": {"rules": [{"metric": "x"}]}},
                   {"policy": {"rules": {"q_snr_db": {"note": "no bounds"}}}}):
        assert data.policy_rules(absent) == []


def test_rule_hours_attribute_rejects_and_kept_hours(curated, curated_dataset):
    index = pl.read_parquet(curated_dataset / layout.INDEX_FILE)
    report = queries.rule_hours(curated, curated.policy())
    snr = report.filter(pl.col("rule") == "q_snr_db").row(0, named=True)
    rejects = pl.read_parquet(curated_dataset / layout.REJECTS_FILE)
    assert snr["rejected"] == rejects.filter(pl.col("q_snr_db") < 10).height >= POLICY_REJECTED
    assert snr["kept_hours"] == pytest.approx(index[schema.AUDIO_DURATION_S].sum() / 3600)
    assert snr["kept_failing"] == index.filter(pl.col("q_snr_db") < 10).height


def test_rule_hours_fall_back_to_the_reject_detail(tmp_path):
    """Rejects that do not carry the metric column are attributed by the rule named in their detail."""
    index = pl.DataFrame({schema.KEY: ["a", "b"], schema.SHARD: ["shard-0.tar"] * 2, schema.SOURCE_ID: ["s1", "s2"],
                          schema.AUDIO_DURATION_S: [2.0, 3.0], "q_snr_db": [15.0, 5.0]})
    rejects = pl.DataFrame({schema.SOURCE_ID: ["s3", "s4", "s5"], schema.KEY: ["c", "d", None],
                            schema.AUDIO_DURATION_S: [4.0, 6.0, None], schema.ORIG_DURATION_S: [9.0, 9.0, 7.0],
                            schema.REJECT_STAGE: ["policy", "policy", "decode"],
                            schema.REJECT_REASON: ["quality", "quality", "empty"],
                            schema.REJECT_DETAIL: ["q_snr_db=3<min 10", "asr_avg_logprob=-2<min -1", "0 bytes"]})
    _write_dataset(tmp_path, index, rejects)
    report = queries.rule_hours(data.open_dataset(str(tmp_path)), [Rule("snr", "q_snr_db", 10.0, None)]).row(0, named=True)
    assert (report["rejected"], report["rejected_hours"]) == (1, pytest.approx(4.0 / 3600))
    assert (report["kept_failing"], report["kept_hours"]) == (1, pytest.approx(5.0 / 3600))


def test_read_segment_returns_the_indexed_audio_and_json(ds, clean_dataset):
    index = pl.read_parquet(clean_dataset / layout.INDEX_FILE)
    for row in index.head(8).iter_rows(named=True):
        segment = ranged_read.read_segment(str(clean_dataset), row[schema.SHARD], row[schema.KEY],
                                            row[schema.TAR_OFFSET], row[schema.FLAC_BYTES])
        assert len(segment.flac) == row[schema.FLAC_BYTES] and segment.flac[:4] == b"fLaC"
        assert decode_flac(segment.flac).size / schema.SAMPLE_RATE == pytest.approx(row[schema.AUDIO_DURATION_S], abs=1e-3)
        assert segment.meta["key"] == row[schema.KEY]


@pytest.mark.parametrize("shard", ["../manifest.json", "shard-000000-000.tar/../../x.tar", "/etc/shard-1.tar",
                                   "shards/shard-000000-000.tar", "shard-..tar", "shard-1.tar\x00", "other.tar", None])
def test_read_segment_refuses_names_outside_the_shards_dir(clean_dataset, shard):
    with pytest.raises(ranged_read.ShardReadError):
        ranged_read.read_segment(str(clean_dataset), shard, "abc", 512, 100)


def test_read_segment_refuses_a_range_that_is_not_the_keys_member(clean_dataset):
    row = pl.read_parquet(clean_dataset / layout.INDEX_FILE).row(0, named=True)
    args = (str(clean_dataset), row[schema.SHARD])
    padded = -(-row[schema.FLAC_BYTES] // 512) * 512
    bad = [(row[schema.KEY], row[schema.TAR_OFFSET] + padded + 512, 100),  # the .json member
           ("0" * 24, row[schema.TAR_OFFSET], row[schema.FLAC_BYTES]),  # another key
           (row[schema.KEY], row[schema.TAR_OFFSET], row[schema.FLAC_BYTES] - 1),  # wrong size
           (row[schema.KEY], row[schema.TAR_OFFSET] + 1, 10), (row[schema.KEY], 0, 10), ("../x", 512, 10)]
    for key, offset, size in bad:
        with pytest.raises(ranged_read.ShardReadError):
            ranged_read.read_segment(*args, key, offset, size)


def test_label_rounds_and_dedup_summary(curated, curated_dataset):
    index = pl.read_parquet(curated_dataset / layout.INDEX_FILE)
    rounds = queries.label_rounds(curated)
    assert rounds["round"].to_list() == ["round-001", "round-002"]
    second = pl.read_parquet(curated_dataset / "labels" / "round-002" / "labels.parquet")
    row = rounds.row(1, named=True)
    assert row["labels"] == second.height and row["labeled_share"] == pytest.approx(1.0)
    assert row["mean_agreement"] == pytest.approx(second["agreement"].mean())
    assert row["rate_accepted"] == pytest.approx(second["accepted"].mean())
    dedup = queries.dedup_summary(curated)
    assert dedup["segments"].sum() == index.height


def test_token_sets_count_tokenized_and_skipped_segments_and_read_the_saved_eval(curated, curated_dataset):
    tokens = pq.read_table(curated_dataset / "tokens" / TOKEN_MODEL / "part-000000.parquet")
    skipped = tokens.filter(pc.is_valid(tokens[schema.TOK_SKIP_REASON])).num_rows
    sets = queries.token_sets(curated)
    assert sets["model"].to_list() == [TOKEN_MODEL]
    row = sets.row(0, named=True)
    assert (row["segments"], row["skipped"], row["tokenized"]) == (tokens.num_rows, skipped, tokens.num_rows - skipped)
    assert row["tokens"] == pc.sum(tokens[schema.TOK_NUM_TOKENS]).as_py()
    assert row["token_hours"] == pytest.approx(row["tokens"] / 25.0 / 3600)
    assert row["kept_share"] == pytest.approx(row["tokenized"] / _index(curated_dataset).num_rows)
    assert row["skip_reasons"] == f"too_short {skipped}"
    assert (row["bitrate_bps"], row["pnmi"], row["wer_ratio"]) == (250.0, 0.71, pytest.approx(0.7 / 0.4))
    saved = json.loads((curated_dataset / "tokens" / TOKEN_MODEL / "eval.json").read_text())
    assert queries.token_eval(curated, TOKEN_MODEL) == saved
    assert queries.token_eval(curated, "other@1") == {}


def test_missing_dataset_and_no_labels(tmp_path, ds):
    with pytest.raises(FileNotFoundError, match="not a finished dataset"):
        data.open_dataset(str(tmp_path))
    assert queries.label_rounds(ds).is_empty()
    assert queries.token_sets(ds).is_empty()
    _write_dataset(tmp_path / "bare", pl.DataFrame({schema.KEY: ["a"], schema.SHARD: ["shard-0.tar"],
                                                    schema.SOURCE_ID: ["s"], schema.AUDIO_DURATION_S: [1.0]}))
    assert queries.dedup_summary(data.open_dataset(str(tmp_path / "bare"))) is None


def test_redact_tree_removes_credentials():
    shown = data.redact_tree({"inputs": ["s3://key:secret@bucket/x?X-Amz-Signature=abc", "/local/path"], "n": 1})
    assert shown == {"inputs": ["s3://bucket/x", "/local/path"], "n": 1}


def _write_dataset(root: Path, index: pl.DataFrame, rejects: pl.DataFrame | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    index.write_parquet(root / layout.INDEX_FILE)
    (rejects if rejects is not None else pl.from_arrow(schema.REJECT_SCHEMA.empty_table())).write_parquet(
        root / layout.REJECTS_FILE)
    (root / layout.MANIFEST_FILE).write_text(json.dumps({"format": "audiomill-dataset/1", "counts": {}}))


def test_one_million_rows_aggregate_in_seconds(tmp_path):
    rows, rng = 1_000_000, np.random.default_rng(7)
    numbers = np.arange(rows)
    index = pl.DataFrame({
        schema.KEY: np.char.add("k", numbers.astype(str)),
        schema.SHARD: np.char.add("shard-000000-", np.char.zfill((numbers // 10_000).astype(str), 3)),
        schema.TAR_OFFSET: numbers * 1024 + 512, schema.FLAC_BYTES: rng.integers(10_000, 90_000, rows),
        schema.SOURCE_ID: np.char.add("s", (numbers // 7).astype(str)),
        schema.AUDIO_DURATION_S: rng.uniform(1, 30, rows), schema.VAD_SPEECH_RATIO: rng.uniform(0, 1, rows),
        "q_snr_db": rng.normal(20, 8, rows), "q_loudness_lufs": rng.normal(-23, 4, rows),
        "asr_avg_logprob": -rng.gamma(2, 0.2, rows), "asr_language": rng.choice(["en", "de", "fr", "es"], rows)})
    _write_dataset(tmp_path, index)
    started = time.perf_counter()
    ds = data.open_dataset(str(tmp_path))
    numbers_shown = queries.overview(ds)
    frames = queries.histograms(ds, data.metric_columns(ds.index_schema()))
    summary = queries.metric_summary(ds)
    shards = queries.shard_table(ds)
    total, page = queries.filter_segments(ds, queries.SegmentFilter(
        ranges=(("q_snr_db", 10.0, None),), values=(("asr_language", ("en",)),), sort_by="q_snr_db"), limit=200)
    languages = queries.top_values(ds, "asr_language")
    elapsed = time.perf_counter() - started
    print(f"\n1M-row index: overview + {len(frames)} histograms + summary + {shards.height} shards + filter "
          f"+ top values in {elapsed:.2f} s")
    assert numbers_shown["segments"] == rows and shards.height == 100 and summary.height == 5
    assert sorted(languages) == ["de", "en", "es", "fr"]
    assert total == index.filter((pl.col("q_snr_db") >= 10) & (pl.col("asr_language") == "en")).height
    assert page.height == 200
    assert elapsed < 30


def test_policy_as_the_curate_job_records_it(curated, curated_dataset):
    assert curated.policy() == [Rule("q_snr_db", "q_snr_db", 10.0, None), Rule("asr_avg_logprob", "asr_avg_logprob", -1.0, 0.0)]
    report = data.recorded_policy_report(curated.manifest)
    assert report is not None and [r["metric"] for r in report["rules"]] == ["q_snr_db", "asr_avg_logprob"]
    assert data.recorded_policy_report({"policy_report": None}) is None


def test_held_shards_serve_policy_rejected_audio(curated, curated_dataset):
    _, rows = queries.filter_segments(curated, queries.SegmentFilter(rejected=True), limit=100)
    held = rows.filter(pl.col(schema.SHARD).str.starts_with("held-"))
    assert held.height >= POLICY_REJECTED
    for row in held.iter_rows(named=True):
        segment = ranged_read.read_segment(str(curated_dataset), row[schema.SHARD], row[schema.KEY],
                                            row[schema.TAR_OFFSET], row[schema.FLAC_BYTES])
        assert segment.meta["key"] == row[schema.KEY] and len(segment.flac) == row[schema.FLAC_BYTES]


@pytest.mark.slow
def test_s3_dataset_reads_like_the_local_one(curated, curated_dataset, tmp_path):
    """Through a real moto S3 server: tables are cached locally once, shards read by byte range."""
    from audiomill import storage
    from audiomill.testing.s3 import create_bucket, moto_s3_server

    with moto_s3_server():
        root = storage.join(create_bucket("datasets"), "batch-01")
        for path in sorted(curated_dataset.rglob("*")):
            if path.is_file():
                storage.write_bytes(storage.join(root, path.relative_to(curated_dataset).as_posix()), path.read_bytes())
        remote = data.open_dataset(root, cache_dir=str(tmp_path / "cache"))
        assert remote.token == curated.token and remote.label == "s3://datasets/batch-01"
        assert queries.overview(remote) == queries.overview(curated)
        assert queries.rejects_by_reason(remote).equals(queries.rejects_by_reason(curated))
        assert queries.label_rounds(remote).equals(queries.label_rounds(curated))
        assert queries.dedup_summary(remote).equals(queries.dedup_summary(curated))
        _, held = queries.filter_segments(remote, queries.SegmentFilter(rejected=True), limit=100)
        kept = pl.read_parquet(curated_dataset / layout.INDEX_FILE).head(1)
        for row in pl.concat([kept, held], how="diagonal_relaxed").drop_nulls(schema.SHARD).iter_rows(named=True):
            segment = ranged_read.read_segment(root, row[schema.SHARD], row[schema.KEY], row[schema.TAR_OFFSET],
                                                row[schema.FLAC_BYTES])
            local = ranged_read.read_segment(str(curated_dataset), row[schema.SHARD], row[schema.KEY],
                                              row[schema.TAR_OFFSET], row[schema.FLAC_BYTES])
            assert segment == local
        with pytest.raises(FileNotFoundError, match="not a finished dataset"):
            data.open_dataset(storage.join(root, "nothing-here"), cache_dir=str(tmp_path / "cache"))


def test_licensing_hours_and_takedowns_match_the_index(licensed_dataset, tmp_path):
    root = tmp_path / "dataset"
    shutil.copytree(licensed_dataset.root, root)
    manifest = json.loads((root / layout.MANIFEST_FILE).read_text())
    manifest["takedowns"] = [{"id": "takedown-1", "criteria": {"domain": "x.example"}, "requested_by": "legal",
                              "counts": {"segments": 2, "sources": 1}, "note": "T-9"}]
    (root / layout.MANIFEST_FILE).write_text(json.dumps(manifest))
    report = queries.licensing(data.open_dataset(str(root)))
    index = pl.read_parquet(root / layout.INDEX_FILE)
    by_license = index.group_by(pl.col(schema.PROV_LICENSE).str.to_lowercase().fill_null("unknown")).agg(
        (pl.col(schema.AUDIO_DURATION_S).sum() / 3600).alias("hours"), pl.len().alias("segments"))
    expected = {r[schema.PROV_LICENSE]: (r["hours"], r["segments"]) for r in by_license.to_dicts()}
    shown = {r["license"].lower(): (r["hours"], r["segments"]) for r in report["by_license"].to_dicts()}
    assert shown.keys() == expected.keys() and len(shown) >= 2
    for name, (hours, segments) in expected.items():
        assert shown[name][0] == pytest.approx(hours, abs=1e-6) and shown[name][1] == segments
    assert report["by_domain"]["segments"].sum() == index.height
    assert report["takedowns"] == [{"id": "takedown-1", "criteria": "domain=x.example", "requested_by": "legal",
                                    "segments": 2, "sources": 1, "note": "T-9"}]


def test_round_clips_pair_the_original_location_with_the_resynthesis(clean_dataset, tmp_path):
    import pyarrow as pa

    root = tmp_path / "dataset"
    shutil.copytree(clean_dataset, root)
    index = pl.read_parquet(root / layout.INDEX_FILE)
    keys = sorted(index[schema.KEY].to_list())[:2]
    round_dir = root / layout.LABELS_DIR / "round-001"
    round_dir.mkdir(parents=True)
    pq.write_table(pa.table({schema.KEY: keys + ["gone"], schema.VER_DECISION: ["accept", "reject", "accept"],
                             schema.VER_REASONS: ["", "content_mismatch", ""]}), round_dir / "verify.parquet")
    pq.write_table(pa.table({schema.KEY: keys, schema.ANN_TRANSCRIPT: ["one", "two"],
                             schema.ANN_GENDER: ["female", "male"]}), round_dir / "annotations.parquet")
    pq.write_table(pa.table({schema.KEY: keys[:1], "resynth_flac": [b"fLaC-bytes"]}), round_dir / "resynth.parquet")
    ds = data.open_dataset(str(root))
    clips = queries.round_clips(ds, "round-001")
    assert clips[schema.KEY].to_list() == sorted(keys + ["gone"])
    by_key = {r[schema.KEY]: r for r in clips.to_dicts()}
    located = index.filter(pl.col(schema.KEY) == keys[0]).row(0, named=True)
    assert by_key[keys[0]][schema.TAR_OFFSET] == located[schema.TAR_OFFSET]
    assert by_key[keys[1]][schema.ANN_GENDER] == "male" and by_key[keys[1]][schema.VER_REASONS] == "content_mismatch"
    assert by_key["gone"][schema.SHARD] is None
    assert queries.resynthesis(ds, "round-001", keys[0]) == b"fLaC-bytes"
    assert queries.resynthesis(ds, "round-001", keys[1]) is None
    assert queries.round_clips(ds, "round-009").is_empty()
