"""Pairwise recall and precision of the dedup edge search on a labeled clip set (tests, benchmarks).

Runs the production path: the features stage on the clips, then the in-process edge search. A pair
counts as found when an edge (near-duplicate or containment) joins it directly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.config import DedupConfig, VadConfig
from audiomill.curation.dedup import edges as E
from audiomill.curation.dedup.cluster import Decision, resolve
from audiomill.curation.dedup.features import conform_features, split_features
from audiomill.pipelines.dedup_features import DedupFeaturesStage
from audiomill.testing.dedup_set import LabeledClip, is_duplicate


@dataclass
class PairScores:
    true_pairs: int
    found_true: int
    found_false: int
    original_pairs: int  # (original, its transformed copy) pairs, the requirement's unit
    found_original: int
    missed: list[tuple[str, str]] = field(default_factory=list)
    false: list[tuple[str, str]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found_original / self.original_pairs if self.original_pairs else 1.0

    @property
    def recall_all(self) -> float:
        return self.found_true / self.true_pairs if self.true_pairs else 1.0

    @property
    def precision(self) -> float:
        found = self.found_true + self.found_false
        return self.found_true / found if found else 1.0


def feature_table(clips: list[LabeledClip], cfg: DedupConfig) -> pa.Table:
    """Run the dedup features stage on the clips as segment rows (key = clip name)."""
    table = pa.table({
        schema.KEY: [c.name for c in clips], schema.SOURCE_ID: [c.name for c in clips],
        schema.PART_ID: pa.array([0] * len(clips), pa.int32()),
        schema.AUDIO_DURATION_S: [len(c.audio) / schema.SAMPLE_RATE for c in clips],
        schema.AUDIO: pa.array([np.ascontiguousarray(c.audio, np.float32).tobytes() for c in clips], pa.large_binary()),
    })
    _, features = split_features(DedupFeaturesStage(cfg)(table))
    return conform_features(features, cfg.num_perm, external=False)


def find_edges(features: pa.Table, cfg: DedupConfig) -> pa.Table:
    """The production in-process edge search with the job's match options."""
    return E.local_edges(features, E.MatchOptions.from_config(cfg))


def score_pairs(clips: list[LabeledClip], edges: pa.Table) -> PairScores:
    found = {tuple(sorted(p)) for p in zip(edges[E.KEY_A].to_pylist(), edges[E.KEY_B].to_pylist())}
    scores = PairScores(0, 0, 0, 0, 0)
    for a, b in itertools.combinations(clips, 2):
        pair = tuple(sorted((a.name, b.name)))
        hit = pair in found
        if is_duplicate(a, b):
            scores.true_pairs += 1
            scores.found_true += hit
            if a.transform == "original" or b.transform == "original":
                scores.original_pairs += 1
                scores.found_original += hit
                if not hit:
                    scores.missed.append(pair)
        elif hit:
            scores.found_false += 1
            scores.false.append(pair)
    return scores


def files_to_decisions(paths: list[str], cfg: DedupConfig, vad: VadConfig | None = None
                       ) -> tuple[pa.Table, dict[str, Decision]]:
    """Files through decode -> VAD -> segment -> quality -> dedup features -> edges -> clusters.

    The production stages in process (no writer, no Ray): the kept segment rows (features
    included) and every clustered segment's decision. For tests and the eval set of real files.
    """
    from audiomill.config import DecodeConfig, IngestConfig
    from audiomill import ingest
    from audiomill.pipelines.base import split_rejected
    from audiomill.pipelines.decode import DecodeStage
    from audiomill.pipelines.quality import QualityStage
    from audiomill.pipelines.segment import SegmentStage
    from audiomill.pipelines.vad import VadStage

    stages = [DecodeStage(DecodeConfig()), VadStage(vad or VadConfig()), SegmentStage(), QualityStage(),
              DedupFeaturesStage(cfg)]
    tables = []
    for part in ingest.iter_parts(ingest.iter_sources(paths, IngestConfig()), 64):
        for stage in stages:
            part = stage(part)
        tables.append(split_rejected(part)[0])
    segments = pa.concat_tables(tables, promote_options="permissive")
    _, features = split_features(segments)
    edge_rows = find_edges(conform_features(features, cfg.num_perm, external=False), cfg)
    edge_list, nodes = E.edges_from_table(edge_rows)
    return segments, resolve(nodes, edge_list)
