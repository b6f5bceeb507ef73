"""Tokenizer training job: datasets -> features (Ray Data) -> k-means -> decoder (Ray Train) ->
one registered, versioned tokenizer artifact. Tokenizing a dataset lives in ``jobs/tokenize.py``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiomill.config import MODEL_CACHE_DIR
from audiomill.execution import features
from audiomill.execution.decoder_training import CHECKPOINT_FILE, DecoderTraining, save_training_data, train_loop
from audiomill.execution.ray_session import RaySettings, ray_session
from audiomill.execution.training import TrainScaling, fit_torch
from audiomill.models.registry import ModelRegistry, resolve_model
from audiomill.models.tokenizer.decoder import DecoderConfig
from audiomill.models.tokenizer.mel import MelConfig
from audiomill.models.tokenizer.metrics import bitrate, code_usage
from audiomill.models.tokenizer.quantizer import fit_codebook
from audiomill.models.tokenizer.semantic import FPS
from audiomill.models.tokenizer.tokenizer import TokenizerParts, save_tokenizer

logger = logging.getLogger(__name__)

MAX_CODEBOOK = 32_768  # token tables store int16


@dataclass(frozen=True)
class TrainRequest:
    """Everything ``audiomill tokenizer train`` decides. ``encoder``: Whisper dir or registry ref."""

    datasets: tuple[str, ...]
    name: str
    encoder: str
    codebook_size: int = 1024
    seed: int = 0
    kmeans_frames: int = 200_000
    kmeans_iterations: int = 25
    window_s: float = 10.0
    decoder_hidden: int = 192
    training: DecoderTraining = field(default_factory=DecoderTraining)
    feature_workers: int = 2
    train_workers: int = 2
    max_segments: int | None = None
    registry: str = ""
    work_dir: str = ""  # features + Ray Train state; empty = a temp dir removed afterwards
    promote: str | None = None
    ray: RaySettings | None = None


@dataclass(frozen=True)
class TrainResult:
    ref: str
    metrics: dict[str, float]
    training_data: str


def train_tokenizer(req: TrainRequest, progress: Callable[[str], None] = logger.info) -> TrainResult:
    """Run the whole training; returns the registered reference and its metrics."""
    if not 2 <= req.codebook_size <= MAX_CODEBOOK:
        raise ValueError(f"codebook_size must be in [2, {MAX_CODEBOOK}], got {req.codebook_size}")
    encoder = resolve_model(req.encoder, req.registry)
    encoder_dir = encoder.local_dir(MODEL_CACHE_DIR)
    segments = features.list_segments(list(req.datasets), req.max_segments)
    if segments.num_rows == 0:
        raise ValueError(f"no kept segments in {list(req.datasets)}")
    digest = features.segments_digest(segments)
    with tempfile.TemporaryDirectory(prefix="tokenizer-train-") as scratch, ray_session(req.ray):
        work = Path(req.work_dir or scratch)
        job = features.FeatureJob(encoder_dir=encoder_dir, output_dir=str(work / "features"),
                                  window_s=req.window_s, workers=req.feature_workers)
        progress(f"features of {segments.num_rows} segments (Ray Data, {req.feature_workers} encoder actors)")
        features.extract_features(segments, job, req.ray)
        frames = features.sample_frames(job.output_dir, req.kmeans_frames, req.seed)
        progress(f"k-means: {len(frames)} frames -> {req.codebook_size} codes")
        codebook = fit_codebook(frames, req.codebook_size, req.seed, req.kmeans_iterations)
        rows, utterances = _training_utterances(job.output_dir, codebook)
        data_path = str(work / "decoder-data.npz")
        save_training_data(data_path, utterances)
        decoder_cfg = DecoderConfig(codebook_size=req.codebook_size, n_mels=job.mel.n_mels,
                                    hidden=req.decoder_hidden)
        progress(f"decoder: Ray Train, {req.train_workers} workers, {req.training.epochs} epochs")
        outcome = fit_torch(train_loop, {"data": data_path, "training": req.training.to_json(),
                                         "decoder": decoder_cfg.to_json()},
                            name=f"tokenizer-{req.name}", storage_dir=str(work / "ray-train"),
                            scaling=TrainScaling(num_workers=req.train_workers), ray_settings=req.ray)
        metrics = _metrics(utterances, req.codebook_size, outcome.metrics, rows)
        artifact = _save(work / "artifact", req, encoder_dir, encoder.model_id, codebook, decoder_cfg,
                         outcome.checkpoint_dir, utterances, metrics)
        registry = ModelRegistry(req.registry)
        version = registry.register(req.name, artifact, training_data=f"segments-sha256:{digest}",
                                    description=f"semantic tokenizer over {encoder.model_id}, K={req.codebook_size}",
                                    metrics=metrics)
    if req.promote:
        registry.promote(req.name, version.version, req.promote)
    progress(f"registered {version.ref}")
    return TrainResult(ref=version.ref, metrics=metrics, training_data=digest)


def _training_utterances(output_dir: str, codebook) -> tuple[list[dict], list[tuple]]:  # noqa: ANN001
    rows = features.iter_features(output_dir, [features.STATES, features.DIM, features.MEL, features.SPEAKER])
    utterances = []
    for row in rows:
        states = np.frombuffer(row[features.STATES], "<f4").reshape(-1, row[features.DIM])
        if len(states) == 0:
            continue
        mel = np.frombuffer(row[features.MEL], "<f4").reshape(4 * len(states), -1)
        utterances.append((codebook.assign(states), mel, np.frombuffer(row[features.SPEAKER], "<f4")))
    if not utterances:
        raise ValueError("no segment is long enough for one token (40 ms)")
    return rows, utterances


def _metrics(utterances: list[tuple], size: int, trained: dict[str, Any], rows: list[dict]) -> dict[str, float]:
    tokens = np.concatenate([u[0] for u in utterances])
    out = bitrate(FPS, size) | code_usage(tokens, size, FPS)
    out |= {"train_segments": float(len(rows)), "train_hours": tokens.size / FPS / 3600.0}
    for name in ("train_l1", "held_out_l1"):
        if isinstance(trained.get(name), float) and np.isfinite(trained[name]):
            out[f"decoder_{name}"] = float(trained[name])
    return out


def _save(directory: Path, req: TrainRequest, encoder_dir: str, encoder_id: str, codebook,  # noqa: ANN001
          decoder_cfg: DecoderConfig, checkpoint_dir: str | None, utterances: list[tuple],
          metrics: dict[str, float]) -> Path:
    import torch

    if checkpoint_dir is None:
        raise RuntimeError("decoder training reported no checkpoint")
    state = torch.load(os.path.join(checkpoint_dir, CHECKPOINT_FILE), map_location="cpu", weights_only=True)
    speakers = np.stack([u[2] for u in utterances])
    mean = speakers.mean(axis=0)
    parts = TokenizerParts(encoder_dir=encoder_dir, encoder_id=encoder_id, codebook=codebook,
                           decoder_state=state, decoder_config=decoder_cfg.to_json(),
                           default_speaker=mean / max(float(np.linalg.norm(mean)), 1e-9),
                           mel=MelConfig(), window_s=req.window_s,
                           extra={"seed": req.seed, "training": req.training.to_json(),
                                  "kmeans": {"frames": req.kmeans_frames, "iterations": req.kmeans_iterations},
                                  "metrics": metrics})
    return save_tokenizer(str(directory), parts)
