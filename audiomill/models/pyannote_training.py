"""Train a small pyannote segmentation model with pyannote's own training API; write a pipeline dir.

``train_segmentation``: ``pyannote.audio.tasks.SpeakerDiarization`` (powerset multi-class, the
task pyannote's pretrained segmentation-3.0 was trained with) + ``PyanNet`` (SincNet, BiLSTM,
linear; sizes in ``SegmentationOptions``) + a lightning ``Trainer`` on CPU. The one change to
pyannote is ``InMemorySpeakerDiarization.get_file``: chunks are cropped from waveforms read with
soundfile instead of decoded by torchcodec.

``write_pipeline_dir``: pyannote's ``config.yaml`` for ``pyannote.audio.pipelines.SpeakerDiarization``
with ``$model/segmentation`` (the trained checkpoint), ``$model/embedding`` (Resemblyzer's
pretrained encoder, ``pyannote_embedding.py``, centred on the training speech), agglomerative clustering and a placeholder
``$model/plda`` (the pipeline constructor always loads a PLDA; only VBx clustering uses it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from audiomill.models.pyannote_corpus import read_waveform
from audiomill.models.tokenizer.mel import torch_threads

log = logging.getLogger(__name__)

PIPELINE_CLASS = "pyannote.audio.pipelines.SpeakerDiarization"
MODEL_FILE = "pytorch_model.bin"  # pyannote's checkpoint name inside a subfolder


@dataclass(frozen=True)
class SegmentationOptions:
    """Training sizes. ``chunk_s``: training/inference window (seconds); small defaults for CPU."""

    epochs: int = 10
    chunk_s: float = 5.0
    batch_size: int = 16
    max_speakers_per_chunk: int = 3
    max_speakers_per_frame: int = 2
    lstm_hidden: int = 64
    lstm_layers: int = 2
    linear_hidden: int = 64
    seed: int = 0


@dataclass(frozen=True)
class PipelineParams:
    """The pipeline's instantiated hyper-parameters (pyannote names; cosine distance threshold)."""

    threshold: float = 0.5
    method: str = "centroid"
    min_cluster_size: int = 3
    min_duration_off: float = 0.0

    def to_pyannote(self) -> dict:
        return {"segmentation": {"min_duration_off": self.min_duration_off},
                "clustering": {"method": self.method, "min_cluster_size": self.min_cluster_size,
                               "threshold": self.threshold}}


def _task_class():
    from pyannote.audio.tasks import SpeakerDiarization

    class InMemorySpeakerDiarization(SpeakerDiarization):
        """pyannote's task; files carry soundfile-read waveforms (no torchcodec decoding)."""

        def get_file(self, file_id):
            path = str(self.prepared_data["audio-path"][file_id])
            return {"audio": path, "waveform": read_waveform(path), "sample_rate": 16_000}

    return InMemorySpeakerDiarization


def train_segmentation(protocol, options: SegmentationOptions, checkpoint: Path,
                       on_epoch: Callable[[int, float], None] | None = None) -> Path:
    """Fit PyanNet on ``protocol``'s train subset; the checkpoint is pyannote-loadable."""
    import lightning
    from pyannote.audio.models.segmentation import PyanNet

    lightning.seed_everything(options.seed, workers=True, verbose=False)
    task = _task_class()(protocol, duration=options.chunk_s, batch_size=options.batch_size,
                         max_speakers_per_chunk=options.max_speakers_per_chunk,
                         max_speakers_per_frame=options.max_speakers_per_frame, num_workers=0)
    model = PyanNet(sincnet={"stride": 10},
                    lstm={"hidden_size": options.lstm_hidden, "num_layers": options.lstm_layers,
                          "bidirectional": True, "monolithic": True, "dropout": 0.0},
                    linear={"hidden_size": options.linear_hidden, "num_layers": 2}, task=task)
    trainer = lightning.Trainer(max_epochs=options.epochs, accelerator="cpu", devices=1, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, limit_val_batches=0,
                                callbacks=[_epoch_callback(on_epoch)] if on_epoch else [])
    with torch_threads():  # one thread: two spun many times slower on a busy 2-core machine
        trainer.fit(model)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(str(checkpoint))
    return checkpoint


def _epoch_callback(report: Callable[[int, float], None]):
    """A lightning callback calling ``report(epoch, training loss)`` after each epoch."""
    import lightning

    class Report(lightning.Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            loss = trainer.callback_metrics.get("loss/train")
            report(trainer.current_epoch + 1, float(loss) if loss is not None else float("nan"))

    return Report()


def write_embedding(out: Path, center_clips: list[np.ndarray]) -> Path:
    """``out/embedding/``: Resemblyzer's encoder centred on ``center_clips`` (one voice each)."""
    from audiomill.models.pyannote_embedding import ResemblyzerEmbedding, save_checkpoint, set_center

    model = ResemblyzerEmbedding.pretrained()
    with torch_threads():
        set_center(model, center_clips)
    return save_checkpoint(model, out / "embedding" / MODEL_FILE)


def write_pipeline_dir(out: Path, segmentation_ckpt: Path, params: PipelineParams) -> Path:
    """``out/config.yaml`` + ``segmentation/`` + ``plda/`` (``embedding/``: ``write_embedding``)."""
    import shutil

    (out / "segmentation").mkdir(parents=True, exist_ok=True)
    if segmentation_ckpt.resolve() != (out / "segmentation" / MODEL_FILE).resolve():
        shutil.copyfile(segmentation_ckpt, out / "segmentation" / MODEL_FILE)
    _write_identity_plda(out / "plda")
    config = {"pipeline": {"name": PIPELINE_CLASS, "params": {
                  "segmentation": "$model/segmentation", "embedding": "$model/embedding",
                  "plda": "$model/plda", "clustering": "AgglomerativeClustering", "segmentation_step": 0.2,
                  "embedding_exclude_overlap": True, "segmentation_batch_size": 8,
                  "embedding_batch_size": 8}},
              "params": params.to_pyannote()}
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _write_identity_plda(directory: Path, dimension: int = 256) -> None:
    """A PLDA that maps embeddings through identities: loadable, unused by agglomerative clustering."""
    directory.mkdir(parents=True, exist_ok=True)
    eye = np.eye(dimension)
    np.savez(directory / "xvec_transform.npz", mean1=np.zeros(dimension), mean2=np.zeros(dimension), lda=eye)
    np.savez(directory / "plda.npz", mu=np.zeros(dimension), tr=eye, psi=np.ones(dimension))
