"""`audiomill diarizer train-pyannote`: conversations -> pyannote corpus -> trained segmentation ->
clustering threshold tuned on held-out conversations -> a pipeline directory ``PyannoteDiarizer`` loads.

Conversations are generated (``audiomill.testing.mixtures``: espeak-ng voices with exact
reference turns) or read from a directory of WAV + RTTM pairs. No printing: progress goes to
``on_progress(message)``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from audiomill.models.pyannote_corpus import LabeledAudio, load_protocol, read_corpus_dir, write_corpus
from audiomill.models.tokenizer.mel import torch_threads
from audiomill.models.pyannote_training import (MODEL_FILE, PipelineParams, SegmentationOptions,
                                                train_segmentation, write_embedding, write_pipeline_dir)

log = logging.getLogger(__name__)

TRAIN_VOICES = ("en+m1", "en+f1", "en+m2", "en+f2", "en+m3", "en+f3", "en+m4", "en+f4", "en+m7")
"""espeak-ng voice variants the generated training conversations draw from."""
THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(15))
"""Clustering thresholds tried on the development conversations (0.5..1.2; pyannote's centroid
linkage compares unit embeddings by euclidean distance, 0..2). Measured with the centred
Resemblyzer embedding on generated conversations: ~0.8 separated voices, >= 0.9 merged them, and
much lower values split voices into clusters under min_cluster_size, which pyannote then merges."""


@dataclass(frozen=True)
class PyannoteTrainRequest:
    out: Path
    conversations: int = 8  # generated training conversations (ignored with data_dir)
    dev_conversations: int = 2  # held out: pick the clustering threshold
    turns: int = 8  # turns per generated conversation (2-5 s each)
    data_dir: Path | None = None  # WAV + RTTM pairs instead of generated speech
    options: SegmentationOptions = field(default_factory=SegmentationOptions)


@dataclass(frozen=True)
class PyannoteTrainResult:
    pipeline_dir: str
    train_files: int
    dev_files: int
    train_audio_s: float
    threshold: float
    dev_der: float  # DER (collar 0.25 s) of the tuned pipeline on the development files
    train_s: float  # wall seconds spent in the lightning Trainer

    def to_dict(self) -> dict:
        return asdict(self)


def run_pyannote_train(req: PyannoteTrainRequest,
                       on_progress: Callable[[str], None] | None = None) -> PyannoteTrainResult:
    say = on_progress or log.info
    train, dev = _conversations(req, say)
    work = req.out / "corpus"
    protocol = load_protocol(write_corpus(work, train, dev))
    say(f"corpus: {len(train)} train + {len(dev)} development files in {work}")
    started = time.perf_counter()
    ckpt = train_segmentation(protocol, req.options, req.out / "segmentation" / MODEL_FILE,
                              on_epoch=lambda e, loss: say(f"epoch {e}/{req.options.epochs}: loss {loss:.3f}"))
    train_s = time.perf_counter() - started
    write_embedding(req.out, [item.audio[int(s * 16_000):int(e * 16_000)]
                              for item in train for s, e, _ in item.turns])
    write_pipeline_dir(req.out, ckpt, PipelineParams())
    threshold, der = tune_threshold(req.out, dev)
    write_pipeline_dir(req.out, ckpt, PipelineParams(threshold=threshold))
    say(f"threshold {threshold:.2f}: development DER {der:.3f}; pipeline written to {req.out}")
    return PyannoteTrainResult(str(req.out), len(train), len(dev), round(sum(t.duration_s for t in train), 2),
                               threshold, round(der, 4), round(train_s, 1))


def _conversations(req: PyannoteTrainRequest, say: Callable[[str], None]
                   ) -> tuple[list[LabeledAudio], list[LabeledAudio]]:
    if req.data_dir is not None:
        items = read_corpus_dir(req.data_dir)
        if len(items) < 2:
            raise ValueError(f"{req.data_dir}: need at least 2 WAV+RTTM pairs (train and development)")
        n_dev = max(1, min(req.dev_conversations, len(items) // 4))
        return items[:-n_dev], items[-n_dev:]
    say(f"generating {req.conversations + req.dev_conversations} conversations (espeak-ng)")
    items = [generated_conversation(i, req.turns, seed=req.options.seed * 1000 + i)
             for i in range(req.conversations + req.dev_conversations)]
    return items[:req.conversations], items[req.conversations:]


def generated_conversation(index: int, turns: int, seed: int,
                           voices: tuple[str, ...] = TRAIN_VOICES) -> LabeledAudio:
    """2 or 3 speakers (alternating by index) with voices drawn from ``voices``; deterministic."""
    import numpy as np

    from audiomill.testing.mixtures import conversation

    speakers = 2 + index % 2
    chosen = tuple(np.random.default_rng(seed).choice(voices, size=speakers, replace=False))
    conv = conversation(speakers, num_turns=turns, seed=seed, voices=chosen)
    return LabeledAudio(f"conv{index:03d}", conv.audio,
                        tuple((t.start_s, t.end_s, t.speaker) for t in conv.turns))


def tune_threshold(pipeline_dir: Path, dev: list[LabeledAudio]) -> tuple[float, float]:
    """The threshold in ``THRESHOLDS`` with the lowest mean DER on ``dev`` (ties: the first)."""
    from audiomill.models.pyannote_backend import PyannoteDiarizer

    diarizer = PyannoteDiarizer(pipeline_dir, device="cpu")
    scores = {}
    caches = [{"waveform": read_tensor(item), "sample_rate": 16_000} for item in dev]
    diarizer.pipeline.training = True  # pyannote caches segmentation + embeddings per file
    with torch_threads():
        for threshold in THRESHOLDS:
            scores[threshold] = _mean_der(diarizer.pipeline, threshold, dev, caches)
    best = min(THRESHOLDS, key=lambda t: scores[t])
    return best, scores[best]


def _mean_der(pipeline, threshold: float, dev: list[LabeledAudio], files: list[dict]) -> float:
    from audiomill.testing.mixtures import diarization_error_rate

    pipeline.instantiate(PipelineParams(threshold=threshold).to_pyannote())
    ders = []
    for item, file in zip(dev, files):
        output = pipeline(file)
        annotation = getattr(output, "speaker_diarization", output)  # pyannote 4 wraps it
        hyp = [(s.start, s.end, str(label)) for s, _, label in annotation.itertracks(yield_label=True)]
        ders.append(diarization_error_rate(list(item.turns), hyp))
    return sum(ders) / max(len(ders), 1)


def read_tensor(item: LabeledAudio):
    import torch

    return torch.from_numpy(item.audio.astype("float32"))[None, :]
