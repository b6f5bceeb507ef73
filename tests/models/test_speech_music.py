"""The speech/music/noise classifier: trained here on generated material, judged on real alsa
speech and on music and noise it was not trained on; deterministic; wired into the clean job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from audiomill import layout, schema
from audiomill.cli.models import models_app
from audiomill.config import ConfigError, load_config
from audiomill.jobs.clean import run_clean
from audiomill.jobs.prepare import prepare_job
from audiomill.jobs.speech_music import MODEL_NAME, SpeechMusicTraining, train_speech_music
from audiomill.models.registry import ModelRegistry, resolve_model
from audiomill.models.speech_music import SpeechMusicModel, feature_size, features
from audiomill.schema import SAMPLE_RATE
from audiomill.testing import signals
from audiomill.testing.dedup_set import resample

SMALL = SpeechMusicTraining(clips_per_class=16, held_out_per_class=8)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("speech-music-registry")
    train_speech_music(str(root), SMALL)
    return root


@pytest.fixture(scope="module")
def model(registry) -> SpeechMusicModel:
    return SpeechMusicModel.load(resolve_model(f"{MODEL_NAME}@production", str(registry)).local_dir(""))


def _weights_sha(version) -> str:
    return next(f.sha256 for f in version.files if f.path.endswith(".npz"))


def test_training_is_deterministic_and_recorded(registry, tmp_path):
    result = CliRunner().invoke(models_app, ["train-speech-music", "--registry", str(tmp_path / "again"),
                                             "--clips", "16", "--json"])
    assert result.exit_code == 0, result.output
    again = ModelRegistry(str(tmp_path / "again")).lookup(f"{MODEL_NAME}@production")
    first = ModelRegistry(str(registry)).lookup(f"{MODEL_NAME}@1")
    assert _weights_sha(again) == _weights_sha(first)  # same seed and clips: the same weights, byte for byte
    assert first.training_data.startswith("generated:speech_music_data seed=0 clips_per_class=16")
    assert first.metrics["held_out_accuracy"] >= 0.8  # measured 0.96 on 24 generated held-out clips


def test_real_speech_is_speech_and_unseen_music_and_noise_are_not(model):
    real = [resample(*signals.read_audio(p), SAMPLE_RATE) for p in signals.alsa_clips() if "Noise" not in p.name]
    assert len(real) >= 6
    assert (model.speech_probability(real) > 0.5).all()  # real voices, never in the training set
    others = [signals.music_like(6.0, SAMPLE_RATE, seed) for seed in range(3)]  # another generator
    others += [signals.white_noise(4.0, SAMPLE_RATE, -25.0, seed=1), signals.sine(440.0, 3.0, SAMPLE_RATE)]
    assert (model.speech_probability(others) < 0.5).all()


def test_too_short_or_silent_clips_are_not_judged(model):
    probs = model.speech_probability([np.zeros(SAMPLE_RATE, np.float32), np.ones(100, np.float32),
                                      np.full(SAMPLE_RATE, np.nan, np.float32)])
    assert np.isnan(probs).all()
    assert features(np.zeros(10, np.float32)).shape == (feature_size(),)


def test_clean_job_writes_q_speech_prob_and_a_policy_can_use_it(registry, tmp_path):
    audio, rate = signals.espeak("The museum opens at nine in the morning.", "en-us")
    speech = signals.write_audio(tmp_path / "in" / "speech.wav", audio, rate)
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: {q_speech_prob: {min: 0.5}}\n")
    cfg = load_config(inputs=[str(speech.parent)], output=str(tmp_path / "out"), overrides=[
        "runner.kind=local", f"models.registry={registry}", "speech_music.enabled=true",
        f"speech_music.model={MODEL_NAME}@production", f"policy={policy}"])
    manifest = run_clean(cfg).to_dict()
    index = pq.read_table(tmp_path / "out" / layout.INDEX_FILE)
    assert index.num_rows >= 1 and all(p > 0.5 for p in index[schema.Q_SPEECH_PROB].to_pylist())
    assert manifest["config"]["speech_music"]["model"] == f"{MODEL_NAME}@1"  # the alias is pinned


def test_missing_model_is_refused_before_any_work(tmp_path):
    cfg = load_config(inputs=[str(tmp_path)], output=str(tmp_path / "out"), overrides=[
        f"models.registry={tmp_path / 'empty'}", "speech_music.enabled=true", "speech_music.model=speech-music@production"])
    with pytest.raises((FileNotFoundError, ValueError, ConfigError)):
        prepare_job(cfg)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="speech_music"):
        load_config(inputs=[str(tmp_path)], output=str(tmp_path / "o"), overrides=["speech_music.enabled=true"])


def test_the_fingerprint_changes_only_when_the_classifier_runs(tmp_path):
    def fingerprint(*overrides: str) -> str:
        return load_config(inputs=[str(tmp_path)], output=str(tmp_path / "o"), overrides=list(overrides)).fingerprint(None)

    assert fingerprint() == fingerprint("speech_music.model=elsewhere@1")  # off: datasets made before it resume
    assert fingerprint() != fingerprint("speech_music.enabled=true", "speech_music.model=speech-music@1")
