"""A 1.4 s excerpt, narrowband (8 kHz round trip) or not, is found inside its longer original."""

from __future__ import annotations


import numpy as np
import pytest

from audiomill.config import DedupConfig
from audiomill.curation.dedup.windows import WindowOptions
from audiomill.schema import SAMPLE_RATE
from audiomill.testing import signals
from audiomill.testing.dedup_eval import files_to_decisions
from audiomill.testing.dedup_set import LONG_EN, _speech, resample


def _narrowband(audio: np.ndarray) -> np.ndarray:
    return resample(resample(audio, SAMPLE_RATE, 8_000), 8_000, SAMPLE_RATE)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[list[str], dict[str, str]]:
    """Long espeak-ng recordings (two sentences run together, ~6 s) and 1.4 s excerpts of each at
    three offsets as their own files, narrowband (8 kHz round trip) and untouched."""
    root = tmp_path_factory.mktemp("short")
    pad = signals.silence(0.3, SAMPLE_RATE)
    paths, role = [], {}
    for i, voice in enumerate(("en", "en+f3")):
        for j, text in enumerate(LONG_EN[:2]):
            audio = _speech(f"{text} {LONG_EN[j + 2]}", voice)
            start_s, end_s = signals.trim_silence_bounds(audio, SAMPLE_RATE)
            audio = audio[int(start_s * SAMPLE_RATE):int(end_s * SAMPLE_RATE)]
            path = signals.write_audio(root / f"o{i}{j}.wav", np.concatenate([pad, audio, pad]), SAMPLE_RATE)
            paths.append(str(path))
            role[str(path)] = "long"
            for k, offset_s in enumerate((0.0, 2.0, audio.size / SAMPLE_RATE - 1.4)):
                excerpt = audio[int(offset_s * SAMPLE_RATE):int((offset_s + 1.4) * SAMPLE_RATE)]
                for kind, clip in (("narrowband", _narrowband(excerpt)), ("wideband", excerpt)):
                    path = signals.write_audio(root / f"o{i}{j}_{kind}{k}.wav",
                                               np.concatenate([pad, clip, pad]), SAMPLE_RATE)
                    paths.append(str(path))
                    role[str(path)] = kind
    return paths, role


def _outcome(paths, role, cfg: DedupConfig) -> dict[str, list]:
    segments, decisions = files_to_decisions(paths, cfg)
    out: dict[str, list] = {"long": [], "narrowband": [], "wideband": []}
    for row in segments.to_pylist():
        decision = decisions.get(row["key"])
        out[role[row["source_uri"]]].append(decision.reason if decision and not decision.kept else None)
    return out


def test_short_excerpts_are_dropped_and_no_long_recording_is(files):
    paths, role = files
    outcome = _outcome(paths, role, DedupConfig())
    assert len(outcome["narrowband"]) == len(outcome["wideband"]) == 12
    assert outcome["narrowband"] == ["duplicate_audio"] * 12
    assert outcome["wideband"].count("duplicate_audio") >= 11, outcome["wideband"]
    assert all(reason is None for reason in outcome["long"])


def test_short_window_scale_is_what_finds_them(files, monkeypatch):
    """With one 3 s window scale (the old setting) several of these short copies are missed."""
    from audiomill.curation.dedup import windows

    monkeypatch.setattr(windows, "WindowOptions", lambda: WindowOptions(short_blocks=None))
    monkeypatch.setattr(windows.audio_window_signatures, "__defaults__",
                        (WindowOptions(short_blocks=None), windows.DEFAULT_OPTIONS))
    paths, role = files
    outcome = _outcome(paths, role, DedupConfig())
    assert (outcome["narrowband"] + outcome["wideband"]).count(None) >= 3
