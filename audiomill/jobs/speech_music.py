"""Training the speech/music/noise classifier on generated material, into the model registry."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from audiomill.models import speech_music
from audiomill.models.registry import ModelRegistry, ModelVersion
from audiomill.models.speech_music_data import training_set

MODEL_NAME = "speech-music"
HELD_OUT_SEED_OFFSET = 1000  # generated held-out clips never share a seed with the training clips


@dataclass(frozen=True)
class SpeechMusicTraining:
    """What to train: clips per class (speech, music, noise), the seed, and what to promote."""

    clips_per_class: int = 150
    seed: int = 0
    held_out_per_class: int = 30
    promote: str | None = "production"


def _espeak_version() -> str:
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    return next((word for word in out.split() if word[:1].isdigit()), "unknown")


def _features(clips: list[np.ndarray], progress: Callable[[str], None] | None) -> np.ndarray:
    rows = []
    for i, clip in enumerate(clips):
        rows.append(speech_music.features(clip))
        if progress and (i + 1) % 100 == 0:
            progress(f"features {i + 1}/{len(clips)}")
    return np.stack(rows)


def train_speech_music(registry: str, settings: SpeechMusicTraining = SpeechMusicTraining(),
                       progress: Callable[[str], None] | None = None) -> ModelVersion:
    """Generate, fit, score on a generated held-out set, and register ``speech-music@N``."""
    say = progress or (lambda _: None)
    say(f"generating {settings.clips_per_class} clips per class (espeak-ng, rooms, beds, synthetic music)")
    clips, labels = training_set(settings.clips_per_class, settings.seed)
    model = speech_music.fit(_features(clips, say), labels)
    say("scoring on generated held-out clips")
    held, held_labels = training_set(settings.held_out_per_class, settings.seed + HELD_OUT_SEED_OFFSET)
    predicted = model.probabilities(_features(held, None)).argmax(axis=1)
    model.metrics.update({"held_out_accuracy": float((predicted == held_labels).mean()),
                          "held_out_rows": int(len(held_labels))})
    directory = tempfile.mkdtemp(prefix="audiomill-speech-music-")
    try:
        model.save(directory)
        data = (f"generated:speech_music_data seed={settings.seed} clips_per_class={settings.clips_per_class} "
                f"espeak-ng={_espeak_version()}")
        reg = ModelRegistry(registry)
        version = reg.register(MODEL_NAME, directory, training_data=data, metrics=model.metrics,
                               description=f"speech/music/noise classifier, features {speech_music.FEATURE_VERSION}")
        if settings.promote:
            reg.promote(MODEL_NAME, version.version, settings.promote)
        return version
    finally:
        shutil.rmtree(directory, ignore_errors=True)
