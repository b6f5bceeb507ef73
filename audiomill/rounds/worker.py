"""What one worker does with a batch of clips: annotate, or re-synthesize + verify (no Ray here).

A ``RoundWorker`` loads the understanding model (Whisper + the pinned heads), the generation
model and, when configured, the semantic tokenizer once; the execution layer maps batches of
rows onto it (Ray Data actors) or calls it in-process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from audiomill import schema
from audiomill.annotation import Annotation
from audiomill.audio import encode_flac
from audiomill.models.generation.model import Generator
from audiomill.models.generation.voices import EngineError
from audiomill.models.understanding.heads import AttributeHeads
from audiomill.models.understanding.model import ClipFeatures, UnderstandingModel
from audiomill.rounds.config import VerifyThresholds
from audiomill.rounds.content import normalize_words
from audiomill.rounds.verify import Side, Verdict, failed, verify
from audiomill.schema import VerifyReason

logger = logging.getLogger(__name__)
FEATURES = "features"  # list<float32>: ClipFeatures.vector() (pooled states, embedding, measures)
RESYNTH_FLAC = "resynth_flac"  # the re-synthesis (with its scene) as 16 kHz FLAC bytes


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to load its models (picklable: it travels to Ray actors)."""

    asr_dir: str
    asr_id: str
    heads_dir: str | None
    heads_id: str
    engine: str = "auto"
    tokenizer: str = ""
    registry: str = ""
    cpu_threads: int = 1


class RoundWorker:
    def __init__(self, spec: WorkerSpec) -> None:
        heads = AttributeHeads.load(spec.heads_dir) if spec.heads_dir else None
        self.model = UnderstandingModel(spec.asr_dir, spec.asr_id, heads, spec.heads_id, spec.cpu_threads)
        from audiomill.rounds.seed import babble_voices

        self.generator = Generator(spec.engine, babble_voices())
        self.tokenizer = None
        if spec.tokenizer:
            from audiomill.models.tokenizer import SemanticTokenizer

            self.tokenizer = SemanticTokenizer.load(spec.tokenizer, spec.registry)

    @property
    def verifier_id(self) -> str:
        return self.tokenizer.version if self.tokenizer is not None else f"{self.model.asr_id}:encoder-dtw"

    def annotate(self, keys: list[str], clips: list[np.ndarray]) -> list[dict[str, Any]]:
        """Annotation rows with the feature vector each was read from (``FEATURES``)."""
        heard = self.model.hear(clips)
        rows = []
        for key, h in zip(keys, heard):
            row = self.model.describe(key, h).to_row()
            row[FEATURES] = h.features.vector().astype(np.float32).tolist()
            rows.append(row)
        for row, tokens in zip(rows, self.tokens(clips) or []):
            row[schema.TOK_TOKENS] = tokens
        return rows

    def tokens(self, clips: list[np.ndarray]) -> list[list[int]] | None:
        """Semantic tokens of each clip (what the generation model learns to produce); None
        without a tokenizer."""
        if self.tokenizer is None:
            return None
        return [t.astype(np.int32).tolist() for t in self.tokenizer.encode_batch(clips)]

    def features(self, clips: list[np.ndarray]) -> list[list[float]]:
        return [f.vector().astype(np.float32).tolist() for f in self.model.features(clips)]

    def _side(self, features: ClipFeatures, audio: np.ndarray, annotation: Annotation | None) -> Side:
        probs = {}
        if self.model.heads is not None:
            probs = {k: v[0] for k, v in self.model.predict_proba([features]).items()}
        tokens = self.tokenizer.encode(audio) if self.tokenizer is not None else None
        return Side(features, probs, tokens, annotation)

    def resynthesize(self, labels: list[Annotation]) -> list[dict[str, Any]]:
        """``{key, resynth_flac, ver_generator}`` per label; FLAC is None when synthesis failed."""
        rows = []
        for label in labels:
            try:
                flac = encode_flac(self.generator.synthesize(label).audio)
            except EngineError as err:
                logger.warning("no re-synthesis for %s: %s", label.key, err)
                flac = None
            rows.append({schema.KEY: label.key, RESYNTH_FLAC: flac, schema.VER_GENERATOR: self.generator.model_id})
        return rows

    def verify(self, labels: list[Annotation], originals: list[np.ndarray], synths: list[np.ndarray | None],
               thresholds: VerifyThresholds) -> list[dict[str, Any]]:
        """One verify row per label: every score, each check, the decision and its reasons."""
        done = [i for i, s in enumerate(synths) if s is not None and s.size]
        original_features = self.model.features([originals[i] for i in done])
        heard = self.model.hear([synths[i] for i in done])
        sides = {}
        for i, orig, h in zip(done, original_features, heard):
            back = self.model.describe(labels[i].key, h) if self.model.heads is not None else None
            sides[i] = (self._side(orig, originals[i], None), self._side(h.features, synths[i], back))
        verdicts: dict[int, Verdict] = {}
        for i, (original, synth) in sides.items():
            text = normalize_words(labels[i].value(schema.ANN_TRANSCRIPT) or "")
            foils = [s for j, (_, s) in sides.items()
                     if j != i and normalize_words(labels[j].value(schema.ANN_TRANSCRIPT) or "") != text]
            verdicts[i] = verify(labels[i], original, synth, thresholds, foils)
        return [{schema.KEY: label.key, **(verdicts.get(i) or failed(VerifyReason.SYNTHESIS_FAILED)).row(),
                 schema.VER_VERIFIER: self.verifier_id} for i, label in enumerate(labels)]
