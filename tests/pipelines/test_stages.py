"""Decode, VAD, segment and writer stages run in-process on parts built by ingest."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema
from audiomill.audio import decode_flac
from audiomill.config import CleanConfig, DecodeConfig, IngestConfig, ShardConfig, VadConfig, load_config
from audiomill import ingest
from audiomill.pipelines.base import Stage, split_rejected
from audiomill.pipelines.decode import DecodeStage
from audiomill.pipelines.segment import SegmentStage
from audiomill.formats.shards import TAR_MTIME
from audiomill.pipelines.vad import VadStage
from audiomill.pipelines.writer import PartIncompleteError, WriterStage
from audiomill.schema import SAMPLE_RATE, RejectReason
from audiomill.testing.signals import resample, silence, sine, white_noise, write_audio

SPEECH_TOLERANCE_S = 0.35
# short segments so one espeak sentence becomes several segments (exercises the explode)
SPLIT_VAD = VadConfig(min_segment_s=0.5, max_segment_s=1.5)
EXPECTED_REJECTS = {
    "empty.wav": ("decode", RejectReason.EMPTY.value),
    "page.wav": ("decode", RejectReason.NOT_AUDIO.value),
    "cut.wav": ("decode", RejectReason.DECODE_ERROR.value),
    "silence.wav": ("vad", RejectReason.NO_SPEECH.value),
    "noise.wav": ("vad", RejectReason.NO_SPEECH.value),
}
SPEECH_FILES = ("speech.wav", "speech44k.flac")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, speech_clip) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_audio(root / "speech.wav", speech_clip.audio, SAMPLE_RATE)
    write_audio(root / "speech44k.flac", resample(speech_clip.audio, SAMPLE_RATE, 44_100), 44_100)
    write_audio(root / "silence.wav", silence(3.0, SAMPLE_RATE), SAMPLE_RATE)
    write_audio(root / "noise.wav", white_noise(3.0, SAMPLE_RATE, level_dbfs=-25.0), SAMPLE_RATE)
    (root / "empty.wav").write_bytes(b"")
    (root / "page.wav").write_text("<html>Not Found</html>\n" * 30)
    whole = write_audio(root / "tmp.wav", sine(440.0, 1.0, SAMPLE_RATE), SAMPLE_RATE)
    (root / "cut.wav").write_bytes(whole.read_bytes()[:20])
    whole.unlink()
    return root


def parts_of(inputs: list[str], part_size: int = 16) -> list[pa.Table]:
    return list(ingest.iter_parts(ingest.iter_sources(inputs, IngestConfig()), part_size))


def single_part(inputs: list[str]) -> pa.Table:
    (part,) = parts_of(inputs)
    return part


def by_name(table: pa.Table) -> dict[str, dict]:
    """Rows by file name; for segment tables only use it on source-level columns."""
    return {Path(r[schema.SOURCE_URI]).name: r for r in table.to_pylist()}


@pytest.fixture(scope="module")
def decode_stage() -> DecodeStage:
    return DecodeStage(DecodeConfig())


@pytest.fixture(scope="module")
def vad_stage() -> VadStage:
    return VadStage(VadConfig())


@pytest.fixture(scope="module")
def split_vad_stage() -> VadStage:
    return VadStage(SPLIT_VAD)


@pytest.fixture(scope="module")
def decoded(corpus: Path, decode_stage: DecodeStage) -> pa.Table:
    return decode_stage(single_part([str(corpus)]))


@pytest.fixture(scope="module")
def vadded(decoded: pa.Table, vad_stage: VadStage) -> pa.Table:
    return vad_stage(decoded)


def run_to_segments(inputs: list[str], part_size: int = 16) -> list[pa.Table]:
    decode, vad, segment = DecodeStage(DecodeConfig()), VadStage(SPLIT_VAD), SegmentStage()
    return [segment(vad(decode(part))) for part in parts_of(inputs, part_size)]


@pytest.fixture(scope="module")
def segmented(corpus: Path) -> pa.Table:
    (table,) = run_to_segments([str(corpus)])
    return table


# -- decode ------------------------------------------------------------------------------------


def test_decode_rejects_broken_files_with_reason_and_keeps_audio_of_good_ones(decoded: pa.Table):
    rows = by_name(decoded)
    assert len(rows) == 7
    for name, (stage, reason) in EXPECTED_REJECTS.items():
        if stage != "decode":
            continue
        assert (rows[name][schema.REJECT_STAGE], rows[name][schema.REJECT_REASON]) == (stage, reason), name
        assert rows[name][schema.REJECT_DETAIL]
        assert rows[name][schema.AUDIO] is None
        assert rows[name][schema.ORIG_SAMPLE_RATE] is None
    for name in ("speech.wav", "speech44k.flac", "silence.wav", "noise.wav"):
        row = rows[name]
        assert row[schema.REJECT_REASON] is None, (name, row[schema.REJECT_DETAIL])
        samples = np.frombuffer(row[schema.AUDIO], dtype=np.float32)
        assert samples.size / SAMPLE_RATE == pytest.approx(row[schema.AUDIO_DURATION_S])
        assert row[schema.ORIG_DURATION_S] == pytest.approx(row[schema.AUDIO_DURATION_S])
    assert rows["speech44k.flac"][schema.ORIG_SAMPLE_RATE] == 44_100
    assert rows["speech44k.flac"][schema.ORIG_CODEC] == "flac"
    assert rows["speech.wav"][schema.ORIG_SAMPLE_RATE] == SAMPLE_RATE
    assert rows["speech.wav"][schema.ORIG_CHANNELS] == 1
    assert decoded.schema.field(schema.AUDIO).type == pa.large_binary()


def test_decode_rejects_oversized_sources_before_reading(corpus: Path):
    table = DecodeStage(DecodeConfig(max_file_bytes=1000))(single_part([str(corpus / "speech.wav")]))
    assert table[schema.REJECT_REASON].to_pylist() == [RejectReason.TOO_LARGE.value]
    assert table[schema.REJECT_STAGE].to_pylist() == ["decode"]


def test_decode_reads_tar_members_by_byte_range(tmp_path: Path, corpus: Path, decode_stage: DecodeStage):
    tar_path = tmp_path / "bundle.tar"
    with tarfile.open(tar_path, "w") as archive:
        archive.add(corpus / "speech.wav", arcname="a/speech.wav")
        archive.add(corpus / "cut.wav", arcname="cut.wav")
    table = decode_stage(single_part([str(tar_path)]))
    rows = {r[schema.SOURCE_URI].split("#")[1]: r for r in table.to_pylist()}
    assert rows["cut.wav"][schema.REJECT_REASON] == RejectReason.DECODE_ERROR.value
    direct = decode_stage(single_part([str(corpus / "speech.wav")]))
    assert rows["a/speech.wav"][schema.AUDIO] == direct[schema.AUDIO][0].as_py()


def test_decode_turns_a_vanished_file_into_a_read_error(tmp_path: Path, write_tone, decode_stage):
    path = write_tone("gone.wav")
    part = single_part([str(tmp_path)])
    path.unlink()
    table = decode_stage(part)
    assert table[schema.REJECT_REASON].to_pylist() == [RejectReason.READ_ERROR.value]


# -- VAD ---------------------------------------------------------------------------------------


def test_vad_rejects_silence_and_noise_as_no_speech(vadded: pa.Table):
    rows = by_name(vadded)
    for name in ("silence.wav", "noise.wav"):
        assert rows[name][schema.REJECT_STAGE] == "vad", name
        assert rows[name][schema.REJECT_REASON] == RejectReason.NO_SPEECH.value, name
        assert rows[name][schema.REJECT_DETAIL].startswith("speech ratio")
        assert rows[name][schema.AUDIO] is None
        assert rows[name][schema.VAD_STARTS_S] == []


def test_vad_finds_the_speech_inside_the_padded_clip(vadded: pa.Table, speech_clip):
    rows = by_name(vadded)
    for name in SPEECH_FILES:
        row = rows[name]
        assert row[schema.REJECT_REASON] is None, name
        starts, ends = row[schema.VAD_STARTS_S], row[schema.VAD_ENDS_S]
        assert len(starts) == len(ends) >= 1
        assert starts == sorted(starts) and all(a < b for a, b in zip(starts, ends))
        assert starts[0] == pytest.approx(speech_clip.speech_start_s, abs=SPEECH_TOLERANCE_S), name
        assert ends[-1] == pytest.approx(speech_clip.speech_end_s, abs=SPEECH_TOLERANCE_S), name
        speech_s = speech_clip.speech_end_s - speech_clip.speech_start_s
        assert 0.5 * speech_s / speech_clip.duration_s < row[schema.VAD_SPEECH_RATIO] <= 1.0
        assert len(row[schema.VAD_SEGMENT_SPEECH_RATIOS]) == len(starts)
        assert row[schema.AUDIO] is not None


def test_rejected_rows_pass_through_a_stage_untouched(decoded: pa.Table, vadded: pa.Table):
    before = by_name(decoded)
    after = by_name(vadded)
    for name, (stage, _) in EXPECTED_REJECTS.items():
        if stage != "decode":
            continue
        for column in decoded.column_names:
            if not schema.is_timing_column(column):
                assert after[name][column] == before[name][column], (name, column)
        assert after[name][schema.VAD_STARTS_S] is None


def test_stage_call_never_processes_rejected_rows(tmp_path: Path, write_tone):
    """Duplicates point at real, decodable files: a stage must still leave them alone."""
    write_tone("dir/a.wav")
    part = single_part([str(tmp_path / "dir"), str(tmp_path / "dir")])
    seen: list[int] = []

    class CountingStage(Stage):
        name = "count"

        def process(self, table: pa.Table) -> pa.Table:
            seen.append(table.num_rows)
            return table

    out = CountingStage()(part)
    assert seen == [1]
    assert out.num_rows == 2
    assert out.column_names == part.column_names + ["t_count_s"]
    decoded = DecodeStage(DecodeConfig())(part)
    kept, rejected = split_rejected(decoded)
    assert kept.num_rows == 1 and rejected.num_rows == 1
    assert rejected[schema.REJECT_STAGE].to_pylist() == ["ingest"]
    assert rejected[schema.REJECT_REASON].to_pylist() == [RejectReason.DUPLICATE_INPUT.value]
    assert rejected[schema.AUDIO].to_pylist() == [None]
    assert kept[schema.AUDIO][0].as_py() is not None


def test_stage_call_on_an_all_rejected_table_returns_it(tmp_path: Path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"license": "x"}\n')
    part = single_part([str(manifest)])
    out = DecodeStage(DecodeConfig())(part)
    assert out.num_rows == 1
    assert out[schema.REJECT_REASON].to_pylist() == [RejectReason.BAD_MANIFEST_ROW.value]


# -- segment -----------------------------------------------------------------------------------


def test_segment_gives_one_row_per_span(corpus: Path, segmented: pa.Table):
    decode, vad = DecodeStage(DecodeConfig()), VadStage(SPLIT_VAD)
    spans = vad(decode(single_part([str(corpus)])))
    kept, rejected = split_rejected(segmented)
    expected = {}
    for row in split_rejected(spans)[0].to_pylist():
        expected[row[schema.SOURCE_ID]] = list(zip(row[schema.VAD_STARTS_S], row[schema.VAD_ENDS_S]))
    got: dict[str, list] = {}
    for row in kept.to_pylist():
        got.setdefault(row[schema.SOURCE_ID], []).append((row[schema.START_S], row[schema.END_S]))
    assert got == expected
    assert all(len(v) >= 2 for v in got.values())  # the split config really exploded the sources
    assert rejected.num_rows == len(EXPECTED_REJECTS)
    assert {r[schema.KEY] for r in rejected.to_pylist()} == {None}


def test_segment_keys_are_24_hex_without_dots_and_unique(segmented: pa.Table):
    keys = split_rejected(segmented)[0][schema.KEY].to_pylist()
    assert keys and len(set(keys)) == len(keys)
    for key in keys:
        assert len(key) == 24 and "." not in key
        int(key, 16)


def test_segments_are_deterministic_across_runs(corpus: Path, segmented: pa.Table):
    (again,) = run_to_segments([str(corpus)])
    columns = [schema.KEY, schema.SOURCE_ID, schema.START_S, schema.END_S, schema.AUDIO]
    first = split_rejected(segmented)[0].select(columns).sort_by(schema.KEY)
    second = split_rejected(again)[0].select(columns).sort_by(schema.KEY)
    assert first.equals(second)


def test_segment_audio_matches_its_span(segmented: pa.Table, decoded: pa.Table):
    sources = {r[schema.SOURCE_ID]: np.frombuffer(r[schema.AUDIO], np.float32)
               for r in split_rejected(decoded)[0].to_pylist()}
    kept = split_rejected(segmented)[0]
    for row in kept.to_pylist():
        samples = np.frombuffer(row[schema.AUDIO], np.float32)
        span_s = row[schema.END_S] - row[schema.START_S]
        assert abs(samples.size - span_s * SAMPLE_RATE) <= 1
        assert row[schema.AUDIO_DURATION_S] == pytest.approx(span_s)
        first = round(row[schema.START_S] * SAMPLE_RATE)
        source = sources[row[schema.SOURCE_ID]]
        np.testing.assert_array_equal(samples, source[first:first + samples.size])


def test_timing_sums_per_part_survive_the_explode(corpus: Path):
    spans = VadStage(SPLIT_VAD)(DecodeStage(DecodeConfig())(single_part([str(corpus)])))
    segments = SegmentStage()(spans)
    assert segments.num_rows > spans.num_rows
    for column in ("t_decode_s", "t_vad_s"):
        assert pc.sum(spans[column]).as_py() > 0
        assert pc.sum(segments[column]).as_py() == pytest.approx(pc.sum(spans[column]).as_py(),
                                                                 rel=1e-9), column
    assert pc.min(segments["t_segment_s"]).as_py() >= 0


# -- writer ------------------------------------------------------------------------------------


def write(table: pa.Table, output: Path, shard_cfg: ShardConfig = ShardConfig(),
          fingerprint: str = "cfgfp") -> pa.Table:
    return WriterStage(str(output), shard_cfg, fingerprint)(table)


def tar_members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as archive:
        return archive.getmembers()


def test_writer_writes_shards_tables_and_marker(tmp_path: Path, segmented: pa.Table):
    out = tmp_path / "out"
    stats_table = write(segmented, out)
    shard = out / "shards" / "shard-000000-000.tar"
    part_dir = out / "_parts" / "part-000000"
    assert shard.is_file()
    assert (part_dir / "index.parquet").is_file()
    assert (part_dir / "rejects.parquet").is_file()
    marker = json.loads((part_dir / "_DONE.json").read_text())
    assert marker["part_id"] == 0
    assert marker["config_fingerprint"] == "cfgfp"
    assert marker["part_fingerprint"] == segmented[schema.PART_FINGERPRINT][0].as_py()
    stats = marker["stats"]
    kept = split_rejected(segmented)[0]
    assert stats["sources"] == 7
    assert stats["kept_sources"] == len(SPEECH_FILES)
    assert stats["rejected_sources"] == len(EXPECTED_REJECTS)
    assert stats["segments"] == kept.num_rows
    assert stats["rejects_by_reason"] == {"decode_error": 1, "empty": 1, "no_speech": 2, "not_audio": 1}
    assert [s["name"] for s in stats["shards"]] == ["shard-000000-000.tar"]
    assert stats_table[schema.PART_ID].to_pylist() == [0]
    assert json.loads(stats_table["stats_json"][0].as_py())["segments"] == kept.num_rows

    rejects = pq.read_table(part_dir / "rejects.parquet")
    got = {Path(u).name: (s, r) for u, s, r in zip(rejects[schema.SOURCE_URI].to_pylist(),
                                                    rejects[schema.REJECT_STAGE].to_pylist(),
                                                    rejects[schema.REJECT_REASON].to_pylist())}
    assert got == EXPECTED_REJECTS


def test_shard_members_are_sorted_flac_json_pairs(tmp_path: Path, segmented: pa.Table):
    write(segmented, tmp_path / "out")
    members = tar_members(tmp_path / "out/shards/shard-000000-000.tar")
    keys = sorted(split_rejected(segmented)[0][schema.KEY].to_pylist())
    assert [m.name for m in members] == [f"{k}.{ext}" for k in keys for ext in ("flac", "json")]
    assert all(m.isfile() and m.mtime == TAR_MTIME and m.uid == 0 for m in members)


def test_index_points_at_the_exact_flac_bytes(tmp_path: Path, segmented: pa.Table):
    out = tmp_path / "out"
    write(segmented, out)
    index = pq.read_table(out / "_parts/part-000000/index.parquet")
    kept = split_rejected(segmented)[0]
    assert index.num_rows == kept.num_rows
    assert index[schema.KEY].to_pylist() == sorted(kept[schema.KEY].to_pylist())
    assert index.column_names[:len(schema.INDEX_SCHEMA)] == schema.INDEX_SCHEMA.names
    assert schema.AUDIO not in index.column_names
    for row in index.to_pylist():
        blob = (out / "shards" / row[schema.SHARD]).read_bytes()
        flac = blob[row[schema.TAR_OFFSET]:row[schema.TAR_OFFSET] + row[schema.FLAC_BYTES]]
        assert flac[:4] == b"fLaC"
        samples = decode_flac(flac)
        assert abs(samples.size - row[schema.AUDIO_DURATION_S] * SAMPLE_RATE) <= 1
        assert row[schema.ORIG_SAMPLE_RATE] in (SAMPLE_RATE, 44_100)


def test_json_member_describes_the_segment(tmp_path: Path, segmented: pa.Table):
    out = tmp_path / "out"
    write(segmented, out)
    kept = {r[schema.KEY]: r for r in split_rejected(segmented)[0].to_pylist()}
    with tarfile.open(out / "shards/shard-000000-000.tar") as archive:
        for member in archive.getmembers():
            if not member.name.endswith(".json"):
                continue
            meta = json.loads(archive.extractfile(member).read())
            key = member.name[:-len(".json")]
            row = kept[key]
            assert meta["key"] == key
            assert meta["source_uri"] == row[schema.SOURCE_URI]
            assert meta["start_s"] == row[schema.START_S]
            assert meta["end_s"] == row[schema.END_S]
            assert meta["sample_rate"] == SAMPLE_RATE
            assert schema.AUDIO not in meta and not any(schema.is_timing_column(k) for k in meta)


def test_small_target_bytes_makes_several_shards(tmp_path: Path, segmented: pa.Table):
    out = tmp_path / "out"
    write(segmented, out, ShardConfig(target_bytes=1))
    count = split_rejected(segmented)[0].num_rows
    shards = sorted(p.name for p in (out / "shards").iterdir())
    assert shards == [f"shard-000000-{n:03d}.tar" for n in range(count)]
    index = pq.read_table(out / "_parts/part-000000/index.parquet")
    assert sorted(index[schema.SHARD].to_pylist()) == shards


def test_max_samples_caps_samples_per_shard(tmp_path: Path, segmented: pa.Table):
    count = split_rejected(segmented)[0].num_rows
    write(segmented, tmp_path / "one", ShardConfig(max_samples=1))
    one = sorted((tmp_path / "one/shards").iterdir())
    assert len(one) == count
    assert all(len(tar_members(p)) == 2 for p in one)
    write(segmented, tmp_path / "two", ShardConfig(max_samples=2))
    two = sorted((tmp_path / "two/shards").iterdir())
    assert [len(tar_members(p)) // 2 for p in two] == [2] * (count // 2) + [1] * (count % 2)


def test_writer_handles_several_parts_in_one_batch(tmp_path: Path, corpus: Path):
    tables = run_to_segments([str(corpus)], part_size=3)
    assert len(tables) == 3
    out = tmp_path / "out"
    stats = write(pa.concat_tables(tables, promote_options="permissive"), out)
    assert stats[schema.PART_ID].to_pylist() == [0, 1, 2]
    for part_id in range(3):
        assert (out / layout.PARTS_DIR / f"part-{part_id:06d}" / layout.DONE_MARKER).is_file()
    sources = sum(json.loads(s)["sources"] for s in stats["stats_json"].to_pylist())
    assert sources == 7


def test_part_with_only_rejects_writes_empty_index(tmp_path: Path, corpus: Path):
    (table,) = run_to_segments([str(corpus / "silence.wav")])
    out = tmp_path / "out"
    write(table, out)
    assert not (out / "shards").exists() or not any((out / "shards").iterdir())
    index = pq.read_table(out / "_parts/part-000000/index.parquet")
    assert index.num_rows == 0
    assert index.column_names == schema.INDEX_SCHEMA.names
    rejects = pq.read_table(out / "_parts/part-000000/rejects.parquet")
    assert rejects[schema.REJECT_REASON].to_pylist() == [RejectReason.NO_SPEECH.value]


def test_missing_source_raises_part_incomplete(tmp_path: Path, segmented: pa.Table):
    speech_id = by_name(segmented)["speech.wav"][schema.SOURCE_ID]
    partial = segmented.filter(pc.not_equal(segmented[schema.SOURCE_ID], speech_id))
    with pytest.raises(PartIncompleteError, match="part 0"):
        write(partial, tmp_path / "out")
    assert not (tmp_path / "out" / "_parts" / "part-000000" / "_DONE.json").exists()


def test_writing_a_part_twice_gives_identical_shards(tmp_path: Path, corpus: Path, segmented: pa.Table):
    (again,) = run_to_segments([str(corpus)])  # fresh run: different timings, same output
    write(segmented, tmp_path / "a", ShardConfig(max_samples=3))
    write(again, tmp_path / "b", ShardConfig(max_samples=3))
    write(again, tmp_path / "b", ShardConfig(max_samples=3))  # rewrite in place
    a = sorted((tmp_path / "a/shards").iterdir())
    b = sorted((tmp_path / "b/shards").iterdir())
    assert [p.name for p in a] == [p.name for p in b] and len(a) >= 2
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes(), x.name
    index_a = pq.read_table(tmp_path / "a/_parts/part-000000/index.parquet")
    index_b = pq.read_table(tmp_path / "b/_parts/part-000000/index.parquet")
    assert index_a.equals(index_b)


def test_clean_config_sections_drive_the_stages(corpus: Path, tmp_path: Path):
    """The stages take their sections of one CleanConfig; a stricter decode rejects more."""
    cfg: CleanConfig = load_config(overrides=["decode.allowed_sample_rates_hz=[16000]"])
    table = DecodeStage(cfg.decode)(single_part([str(corpus / "speech44k.flac")]))
    assert table[schema.REJECT_REASON].to_pylist() == [RejectReason.UNSUPPORTED_FORMAT.value]
