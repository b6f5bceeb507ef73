"""Per-batch tasks the execution layer maps over clips (each runs inside one worker/actor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audiomill import schema
from audiomill.annotation import Annotation
from audiomill.audio import decode_flac
from audiomill.rounds import seed as seeds
from audiomill.rounds.config import VerifyThresholds
from audiomill.rounds.segments import SegmentRef, read_audio
from audiomill.rounds.worker import FEATURES, RESYNTH_FLAC, RoundWorker, WorkerSpec

Rows = list[dict[str, Any]]
SET = "set"  # seed table: "train" or "eval"
ORIGIN = "origin"  # "generated" or "real"
TRUTH_TRANSCRIPT = "truth_transcript"
TRUTH_LANGUAGE = "truth_language"


def make_worker(spec: WorkerSpec) -> RoundWorker:
    return RoundWorker(spec)


def _ref(row: dict[str, Any]) -> SegmentRef:
    return SegmentRef(row[schema.KEY], row[schema.SHARD], row[schema.TAR_OFFSET], row[schema.FLAC_BYTES],
                      row[schema.AUDIO_DURATION_S])


@dataclass(frozen=True)
class AnnotateTask:
    """Rows: segment refs. Out: annotation rows + feature vectors."""

    dataset: str

    def __call__(self, worker: RoundWorker, rows: Rows) -> Rows:
        clips = [read_audio(self.dataset, _ref(r)) for r in rows]
        return worker.annotate([r[schema.KEY] for r in rows], clips)


@dataclass(frozen=True)
class ResynthesizeTask:
    """Rows: annotation rows. Out: ``{key, resynth_flac, ver_generator}``."""

    def __call__(self, worker: RoundWorker, rows: Rows) -> Rows:
        return worker.resynthesize([Annotation.from_row(r) for r in rows])


@dataclass(frozen=True)
class VerifyTask:
    """Rows: segment ref + annotation + re-synthesis FLAC. Out: verify rows."""

    dataset: str
    thresholds: VerifyThresholds

    def __call__(self, worker: RoundWorker, rows: Rows) -> Rows:
        originals = [read_audio(self.dataset, _ref(r)) for r in rows]
        synths = [decode_flac(r[RESYNTH_FLAC]) if r.get(RESYNTH_FLAC) else None for r in rows]
        return worker.verify([Annotation.from_row(r) for r in rows], originals, synths, self.thresholds)


@dataclass(frozen=True)
class SeedFeaturesTask:
    """Rows: ``{key, set, origin, index, seed}``. Each clip is regenerated here (deterministic),
    so no audio crosses the driver; out: features + known answers."""

    def __call__(self, worker: RoundWorker, rows: Rows) -> Rows:
        real = {c.key: c for c in seeds.real_set()} if any(r[ORIGIN] == "real" for r in rows) else {}
        babble = seeds.babble_voices()
        clips = [real[r[schema.KEY]] if r[ORIGIN] == "real" else seeds.generated_clip(r["index"], r["seed"], babble)
                 for r in rows]
        audio = [c.audio for c in clips]
        out = []
        for row, clip, vector in zip(rows, clips, worker.features(audio)):
            out.append({schema.KEY: clip.key, SET: row[SET], ORIGIN: clip.origin, FEATURES: vector,
                        TRUTH_TRANSCRIPT: clip.truth.transcript, TRUTH_LANGUAGE: clip.truth.language,
                        **{name: clip.truth.labels.get(name) for name in schema.ANNOTATION_FIELDS[2:]}})
        for row, tokens in zip(out, worker.tokens(audio) or []):
            row[schema.TOK_TOKENS] = tokens
        return out
