"""pyannote.audio ``SpeakerDiarization`` loaded from a local pipeline directory; never the hub.

``pipeline_dir`` holds ``config.yaml`` (pyannote's own pipeline format) whose model entries are
``$model/<subfolder>`` (resolved inside the directory) or absolute checkpoint paths. Pipelines
written by ``audiomill diarizer train-pyannote`` have that shape, and so does a pretrained
pyannote pipeline copied to local disk (e.g. ``speaker-diarization-community-1``: config.yaml,
segmentation/, embedding/, plda/).

Installation (``make setup`` does it): ``pip install audiomill[diarize]`` for pyannote.audio's
dependencies, then ``pip install --no-deps pyannote.audio==4.0.7`` (its torchcodec pin is skipped:
torchcodec needs FFmpeg libraries and is only used to read files; audio reaches pyannote here as
an in-memory waveform) and torchaudio's C++ extension removed (the registry's newest torchaudio,
2.11.1, is a CUDA build that cannot load with CPU torch 2.13; its pure-Python resampling and
Kaldi features, all pyannote uses, work without it). See docs/diarization-pyannote.md.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from audiomill.models.diarization import DiarizerUnavailableError, SpeakerTurn, turns_from_labeled
from audiomill.models.tokenizer.mel import torch_threads

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
CONFIG_FILE = "config.yaml"


class PyannoteDiarizer:
    """Speaker turns from a local pyannote pipeline; same interface as ``FallbackDiarizer``."""

    version_prefix = "pyannote"

    def __init__(self, pipeline_dir: str | Path, device: str | None = None,
                 num_speakers: int | None = None, max_speakers: int | None = None) -> None:
        self.pipeline_dir = Path(pipeline_dir).expanduser()
        self.num_speakers = num_speakers
        self.max_speakers = max_speakers
        config = self.pipeline_dir / CONFIG_FILE
        check_pipeline_dir(self.pipeline_dir)
        pipeline_cls = _import_pyannote_pipeline()
        self.pipeline = pipeline_cls.from_pretrained(str(config))
        if self.pipeline is None:
            raise FileNotFoundError(f"pyannote could not load the pipeline in {config}")
        import torch  # present whenever pyannote imported

        self._torch = torch
        chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.pipeline.to(torch.device(chosen))
        self.version = f"{self.version_prefix}:{self.pipeline_dir.name}"

    def diarize(self, audio: np.ndarray, speech_spans: list[tuple[float, float]] | None = None
                ) -> list[SpeakerTurn]:
        """Turns from the preloaded waveform; ``speech_spans`` clip them to VAD speech."""
        waveform = self._torch.from_numpy(np.array(audio, np.float32))[None, :]  # a writable copy
        options: dict[str, Any] = {}
        if self.num_speakers:
            options["num_speakers"] = self.num_speakers
        if self.max_speakers:
            options["max_speakers"] = self.max_speakers
        with torch_threads():  # one thread: two spun ~30x slower on a busy 2-core machine
            output = self.pipeline({"waveform": waveform, "sample_rate": SAMPLE_RATE}, **options)
        annotation = getattr(output, "speaker_diarization", output)  # pyannote 4 wraps it
        raw = [(float(seg.start), float(seg.end), str(label))
               for seg, _, label in annotation.itertracks(yield_label=True)]
        return turns_from_labeled(raw, speech_spans)


def check_pipeline_dir(pipeline_dir: Path) -> dict:
    """The parsed config.yaml, or an error naming the file or subfolder that is missing.

    Checked before pyannote runs so a wrong directory never turns into a hub download attempt
    (pyannote reads a name it cannot find on disk as a hub model id).
    """
    config = pipeline_dir / CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(f"pyannote pipeline config {config} does not exist; "
                                "diarize.pipeline_dir must be a local pipeline directory")
    parsed = yaml.safe_load(config.read_text()) or {}
    name = (parsed.get("pipeline") or {}).get("name") if isinstance(parsed, dict) else None
    if not name:
        raise ValueError(f"{config}: no pipeline.name (expected pyannote's config.yaml format, "
                         "e.g. pipeline: {name: pyannote.audio.pipelines.SpeakerDiarization, params: ...})")
    for key, value in (parsed["pipeline"].get("params") or {}).items():
        if not isinstance(value, str) or key in ("clustering",):
            continue
        path = pipeline_dir / value[len("$model/"):] if value.startswith("$model/") else Path(value)
        if key in ("segmentation", "embedding", "plda") and not path.exists():
            raise FileNotFoundError(f"{config}: pipeline.params.{key} points at {path}, which does not "
                                    "exist (use $model/<subfolder> inside the directory or a local path; "
                                    "hub names are not downloaded)")
    return parsed


def _import_pyannote_pipeline() -> Any:
    # pyannote.audio 4 sends usage telemetry to otel.pyannote.ai unless this is set before import
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    try:
        with warnings.catch_warnings():  # "torchcodec is not installed": expected, audio is in memory
            warnings.filterwarnings("ignore", message=".*torchcodec", category=UserWarning)
            return importlib.import_module("pyannote.audio").Pipeline
    except (ImportError, OSError) as err:  # OSError: a torchaudio whose C++ extension is a CUDA build
        raise DiarizerUnavailableError(
            "diarize.backend=pyannote needs pyannote.audio: `make setup`, or `pip install "
            "audiomill[diarize]` then `pip install --no-deps pyannote.audio==4.0.7`, and with CPU "
            "torch 2.13 remove torchaudio 2.11.1's CUDA-built C++ extension (torchaudio/lib/*.so; "
            f"see docs/diarization-pyannote.md); import failed: {err}. "
            "Or set diarize.backend=fallback.") from err
