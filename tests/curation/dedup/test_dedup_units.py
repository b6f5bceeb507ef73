"""Unit tests of the dedup building blocks on generated signals and hand-made sets with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from audiomill import schema
from audiomill.audio import decode_audio
from audiomill.config import DecodeConfig, DedupConfig
from audiomill.curation.dedup import lsh
from audiomill.curation.dedup.cluster import AUDIO, EXACT, TEXT, Edge, Node, resolve
from audiomill.curation.dedup.edges import edges_from_table
from audiomill.curation.dedup.exact import pcm_hash
from audiomill.curation.dedup.features import conform_features, split_features
from audiomill.curation.dedup.fingerprint import centered_max, landmark_tokens
from audiomill.curation.dedup.match import Relation, audio_relation, coverage
from audiomill.curation.dedup.minhash import EMPTY, MinHasher, similarity
from audiomill.curation.dedup.text import text_signature, words
from audiomill.curation.dedup.windows import WindowOptions, window_signatures
from audiomill.pipelines.dedup_features import DedupFeaturesStage
from audiomill.testing import signals
from audiomill.testing.dedup_eval import find_edges

SR = schema.SAMPLE_RATE


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    audio, sr = signals.espeak("Every morning the baker opens the shop before the sun comes up.", "en")
    return signals.resample(audio, sr, SR)


@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_pcm_hash_catches_same_samples_in_wav_and_flac(tmp_path, speech, rate):
    # the same int16 samples (libsndfile's float -> int16 conversion differs between WAV and FLAC)
    samples = np.round(signals.resample(speech, SR, rate) * 32767).astype(np.int16)
    decoded = {}
    for fmt in ("wav", "flac"):
        sf.write(tmp_path / f"clip.{fmt}", samples, rate, subtype="PCM_16")
        decoded[fmt] = decode_audio(str(tmp_path / f"clip.{fmt}"), DecodeConfig()).samples
    assert pcm_hash(decoded["wav"]) == pcm_hash(decoded["flac"])
    assert pcm_hash(decoded["wav"]) != pcm_hash(decoded["wav"] * np.float32(0.5))
    assert pcm_hash(decoded["wav"]) != pcm_hash(decoded["wav"][1:])


def test_minhash_estimates_jaccard():
    hasher = MinHasher(256, seed=3)
    a = np.arange(0, 1000, dtype=np.uint32)
    for overlap in (0, 250, 500, 900):
        b = np.arange(1000 - overlap, 2000 - overlap, dtype=np.uint32)
        true = overlap / (2000 - overlap)
        assert abs(float(similarity(hasher.signature(a), hasher.signature(b))) - true) < 0.08
    assert float(similarity(hasher.signature(a[:0]), hasher.signature(a[:0]))) == 0.0  # empty matches nothing
    assert (hasher.signature(a[:0]) == EMPTY).all()


def test_group_signatures_equal_per_group_signatures():
    hasher = MinHasher(32)
    tokens = np.random.default_rng(0).integers(0, 2**32, 500, dtype=np.uint64).astype(np.uint32)
    groups = np.random.default_rng(1).integers(0, 5, 500)
    groups[groups == 3] = 4  # group 3 stays empty
    sigs = hasher.group_signatures(tokens, groups, 5)
    for g in range(5):
        assert np.array_equal(sigs[g], hasher.signature(tokens[groups == g]))


def test_centered_max_matches_a_brute_force_filter():
    x = np.random.default_rng(0).random((40, 25)).astype(np.float32)
    for radius, axis in ((0, 0), (3, 0), (6, 1), (50, 0)):
        expected = np.stack([x.take(range(max(0, i - radius), min(x.shape[axis], i + radius + 1)), axis=axis)
                             .max(axis=axis) for i in range(x.shape[axis])], axis=axis)
        assert np.array_equal(centered_max(x, radius, axis), expected)


def test_landmarks_survive_gain_and_resampling_but_not_other_speech(speech):
    tokens = set(landmark_tokens(speech)[0].tolist())
    louder = set(landmark_tokens(np.clip(speech * 2.0, -1, 1))[0].tolist())
    via_8k = set(landmark_tokens(signals.resample(signals.resample(speech, SR, 8000), 8000, SR))[0].tolist())
    other, sr = signals.espeak("The museum opens at nine in the morning and closes at six.", "en")
    other_tokens = set(landmark_tokens(signals.resample(other, sr, SR))[0].tolist())
    assert len(tokens) > 100
    assert len(tokens & louder) / len(tokens) > 0.8
    assert len(tokens & via_8k) / len(tokens) > 0.5
    assert len(tokens & other_tokens) / len(tokens) < 0.15
    assert landmark_tokens(np.zeros(SR, np.float32))[0].size == 0  # digital silence has no peaks


def test_windows_cover_each_second_and_containment_shows(speech):
    hasher = MinHasher(64)
    tokens, times = landmark_tokens(speech)
    duration = len(speech) / SR
    windows = window_signatures(tokens, times, duration, hasher, WindowOptions(1.0, 3, 1))
    blocks = int(np.ceil(duration))
    assert len(windows) == max(1, blocks - 2) + max(1, blocks - 1)  # 3-block and 2-block scales
    one_scale = window_signatures(tokens, times, duration, hasher, WindowOptions(1.0, 3, 1, None))
    assert len(one_scale) == max(1, blocks - 2)
    filler, sr = signals.espeak("Der schnelle braune Fuchs springt über den faulen Hund.", "de")
    filler = signals.resample(filler, sr, SR)
    longer = np.concatenate([filler, signals.silence(0.31, SR), speech, signals.silence(0.4, SR), filler[::-1]])
    long_windows = window_signatures(*landmark_tokens(longer), len(longer) / SR, hasher, WindowOptions(1.0, 3, 1))
    cov_short, cov_long, best = coverage(windows, long_windows, 0.25)
    assert cov_short == 1.0 and cov_long < 0.8 and best > 0.5
    assert audio_relation(windows, long_windows, 0.25, 0.8) is Relation.A_IN_B
    assert audio_relation(long_windows, windows, 0.25, 0.8) is Relation.B_IN_A
    assert audio_relation(windows, windows, 0.25, 0.8) is Relation.SAME


def test_band_keys_and_buckets():
    sigs = np.random.default_rng(0).integers(0, 2**32, (3, 64), dtype=np.uint64).astype(np.uint32)
    sigs[1] = sigs[0]
    sigs[2, :3] = sigs[0, :3]  # shares exactly the first band of 3 rows
    keys = lsh.band_keys(sigs, 21, 3)
    assert keys.shape == (3, 21) and keys.dtype == np.uint64
    assert (keys[0] == keys[1]).all() and (keys[0] == keys[2]).sum() == 1
    assert len(set(keys[0].tolist())) == 21  # bands never collide with each other
    band_key, owner = lsh.explode(np.array(["a", "b", "c"]), sigs, 21, 3)
    assert lsh.candidate_pairs(band_key, owner) == {("a", "b"), ("a", "c"), ("b", "c")}
    many = [f"k{i:03d}" for i in range(100)]
    assert len(lsh.bucket_pairs(many, max_bucket=64)) == 99 + 98  # star + chain, not 4950
    assert len(lsh.bucket_pairs(many[:10], max_bucket=64)) == 45
    with pytest.raises(ValueError, match="exceeds"):
        lsh.band_keys(sigs, 30, 3)


def test_text_signature_ignores_case_punctuation_and_short_texts():
    hasher = MinHasher(128, seed=2)
    text = "It was a bright cold day in April, and the clocks were striking thirteen."
    same = text_signature(text.upper().replace(",", ""), hasher)
    assert words("Hello, World!") == ["hello", "world"]
    assert float(similarity(text_signature(text, hasher), same)) == 1.0
    other = text_signature("The sky above the port was the color of television tuned to a dead channel.", hasher)
    assert float(similarity(text_signature(text, hasher), other)) < 0.1
    assert text_signature("thank you very much", hasher) is None and text_signature(None, hasher) is None


def _nodes(*specs) -> dict[str, Node]:
    return {key: Node(key, duration, score, external) for key, duration, score, external in specs}


def test_keep_choice_is_best_score_then_longest_then_smallest_key():
    nodes = _nodes(("b", 5.0, None, False), ("a", 5.0, None, False), ("c", 4.0, None, False))
    edges = [Edge("a", "b", EXACT), Edge("b", "c", AUDIO)]
    decisions = resolve(nodes, edges)
    assert decisions["a"].kept and not decisions["b"].kept and not decisions["c"].kept
    assert (decisions["b"].reason, decisions["b"].duplicate_of) == ("duplicate_exact", "a")
    assert (decisions["c"].reason, decisions["c"].duplicate_of) == ("duplicate_audio", "a")
    scored = _nodes(("b", 5.0, 4.5, False), ("a", 5.0, 3.0, False), ("c", 4.0, float("nan"), False))
    assert resolve(scored, edges)["b"].kept and resolve(scored, edges)["a"].duplicate_of == "b"
    for order in itertools.permutations(edges + [Edge("c", "a", TEXT)]):
        assert resolve(nodes, list(order)) == resolve(nodes, edges + [Edge("c", "a", TEXT)])


def test_containment_drops_the_clip_but_never_merges_its_containers():
    nodes = _nodes(("clip", 4.0, None, False), ("podcast1", 30.0, None, False), ("podcast2", 25.0, None, False),
                   ("clip_mp3", 4.1, None, False))
    edges = [Edge("clip", "podcast1", AUDIO, Relation.A_IN_B), Edge("podcast2", "clip", AUDIO, Relation.B_IN_A),
             Edge("clip", "clip_mp3", AUDIO)]
    decisions = resolve(nodes, edges)
    assert decisions["podcast1"].kept and decisions["podcast2"].kept
    assert not decisions["clip"].kept and not decisions["clip_mp3"].kept
    assert decisions["clip"].duplicate_of == decisions["clip_mp3"].duplicate_of == "podcast1"
    assert decisions["clip"].detail.startswith("audio contained in")


def test_external_segments_win_and_are_never_decided():
    nodes = _nodes(("old", 3.0, None, True), ("new", 9.0, 5.0, False))
    decisions = resolve(nodes, [Edge("new", "old", AUDIO)])
    assert set(decisions) == {"new"} and decisions["new"].duplicate_of == "old"


def test_dedup_config_validates_bands():
    with pytest.raises(ValueError, match="bands"):
        DedupConfig(num_perm=16, bands=32)
    assert DedupConfig().num_perm // DedupConfig().bands == 3
    assert pa.types.is_uint32(pa.list_(pa.uint32(), 4).value_type)


def test_text_duplicates_are_found_only_when_transcripts_exist():
    cfg = DedupConfig()
    story = "The old lighthouse keeper climbed the stairs every night to light the lamp for passing ships."
    noise = [signals.white_noise(2.0, SR, -30.0, seed=i) for i in range(3)]
    table = pa.table({
        schema.KEY: ["a", "b", "c"], schema.SOURCE_ID: ["s1", "s2", "s3"],
        schema.PART_ID: pa.array([0, 0, 0], pa.int32()), schema.AUDIO_DURATION_S: [2.0, 2.0, 2.0],
        schema.AUDIO: pa.array([n.tobytes() for n in noise], pa.large_binary()),
    })
    _, no_text = split_features(DedupFeaturesStage(cfg)(table))
    assert schema.DEDUP_TEXT_MINHASH not in no_text.column_names  # no asr_text column: text dedup is a no-op
    with_text = table.append_column(schema.DEDUP_TEXT_COLUMN, pa.array([story, story.lower() + "!", "ok then"]))
    _, features = split_features(DedupFeaturesStage(cfg)(with_text))
    edges, nodes = edges_from_table(find_edges(conform_features(features, cfg.num_perm, False), cfg))
    assert [(e.a, e.b, e.kind) for e in edges] == [("a", "b", TEXT)]  # different noise: no audio edge
    decisions = resolve(nodes, edges)
    assert decisions["b"].reason == "duplicate_text" and decisions["b"].duplicate_of == "a"
