"""Recall and precision of near-duplicate audio detection on a labeled set with hard negatives.

Positives: each chosen original vs. its mp3 64 kbps / opus 32 kbps re-encode, 8/22/44 kHz round
trips, +-6 dB gain, white noise at 20 dB SNR, ~1 s trims at either end and the original embedded in
a longer recording. Negatives: every other pair, among them the same text in other espeak voices,
other texts in the same voice, and the alsa clips (one speaker, different words).
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pytest

from audiomill.config import DedupConfig
from audiomill.testing import dedup_eval as evaluate
from audiomill.curation.dedup.edges import edges_from_table
from audiomill.curation.dedup.cluster import resolve
from audiomill.testing.dedup_set import make_dedup_set

CFG = DedupConfig()


@pytest.fixture(scope="module")
def clips():
    return make_dedup_set()


@pytest.fixture(scope="module")
def features(clips):
    return evaluate.feature_table(clips, CFG)


@pytest.fixture(scope="module")
def edges(features):
    return evaluate.find_edges(features, CFG)


def test_recall_and_precision_on_pairs(clips, edges, capsys):
    scores = evaluate.score_pairs(clips, edges)
    with capsys.disabled():
        print(f"\ndedup labeled set: {len(clips)} clips, {scores.original_pairs} original-copy pairs, "
              f"recall {scores.recall:.3f} (all {scores.true_pairs} true pairs: {scores.recall_all:.3f}), "
              f"precision {scores.precision:.4f}, false edges {scores.found_false}")
    assert scores.original_pairs >= 90
    assert scores.recall >= 0.95, scores.missed
    assert scores.precision >= 0.99, scores.false
    transforms = {c.transform for c in clips}
    assert {"mp3_64k", "rs8k", "rs22k", "rs44k", "gain+6", "gain-6", "noise20", "trim_start", "trim_end",
            "contained"} <= transforms


def test_hard_negatives_are_never_linked(clips, edges):
    names = {c.name: c for c in clips}
    linked = set(zip(edges["key_a"].to_pylist(), edges["key_b"].to_pylist()))
    for a, b in linked:
        ca, cb = names[a], names[b]
        assert ca.contents & cb.contents, (a, b)
    originals = [c.name for c in clips if c.transform == "original"]
    same_voice = [(a, b) for a in originals for b in originals if a < b and a.split(":")[0] == b.split(":")[0]]
    same_text = [(a, b) for a in originals for b in originals if a < b and a.split(":")[1] == b.split(":")[1]]
    assert len(same_voice) > 20 and len(same_text) > 20
    assert not (set(same_voice) | set(same_text)) & {tuple(sorted(p)) for p in linked}


def test_containment_points_from_the_clip_to_the_longer_recording(edges):
    rows = [r for r in edges.to_pylist() if r["key_a"].endswith("|contained") or r["key_b"].endswith("|contained")]
    # a short original inside a longer recording is contained; the 10 s "long:" ones fill most of it
    originals = [r for r in rows if ("|" not in r["key_a"] or "|" not in r["key_b"]) and "long:" not in r["key_a"]]
    assert originals
    for row in originals:
        inner = row["key_a"] if row["relation"] == "a_in_b" else row["key_b"] if row["relation"] == "b_in_a" else None
        assert inner is not None and not inner.endswith("|contained"), row


def test_features_and_clusters_are_deterministic(clips, features, edges):
    subset = random.Random(7).sample(clips, 30)
    again = evaluate.feature_table(subset, CFG).sort_by("key")
    mask = pa.compute.is_in(features["key"], pa.array([c.name for c in subset]))
    assert again.equals(features.filter(mask).sort_by("key"))
    edges_again = evaluate.find_edges(features.take(pa.array(np.arange(features.num_rows)[::-1])), CFG)
    assert sorted(map(str, edges_again.to_pylist())) == sorted(map(str, edges.to_pylist()))
    decisions = resolve(*reversed(edges_from_table(edges)))
    reordered_edges, nodes = edges_from_table(edges.take(pa.array(np.arange(edges.num_rows)[::-1])))
    assert resolve(nodes, reordered_edges) == decisions
    kept_of_group: dict[str, set] = {}
    for key, decision in decisions.items():
        clip = next(c for c in clips if c.name == key)
        target = decision.cluster_id
        assert target == key or next(c for c in clips if c.name == target).contents & clip.contents
        kept_of_group.setdefault(clip.original, set()).add(decision.cluster_id)
    assert all(len(v) == 1 for v in kept_of_group.values()), kept_of_group
