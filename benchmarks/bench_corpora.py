"""The two benchmark corpora of ``clean_cpu.py``, built once and reused while their truth file matches.

- ``long``: ``make_long_corpus(unique_speech=True)``: 2-10 min 16 kHz FLAC files of espeak speech
  that does not repeat (5% planted exact repeats), pauses, noise and music.
- ``short``: hundreds of short files of real recordings in mixed codecs and rates: the Debian
  packages ``asterisk-core-sounds-en-wav`` (568 prompts, one human speaker, 8 kHz WAV, 25 min,
  CC-BY-SA-3.0) and ``asterisk-moh-opsound-wav`` (5 music-on-hold tracks, 18 min, cut into
  20-60 s pieces: the non-speech). File i is re-encoded by ``i % 6`` as WAV 8 kHz (byte copy),
  FLAC 16 kHz, Ogg Vorbis 22.05 kHz, MP3 44.1 kHz, WAV 48 kHz stereo or Opus 48 kHz. Without
  those packages, generated short files stand in (same codec mix, espeak speech), and the corpus
  says so in its truth file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

ASTERISK_SPEECH = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_MUSIC = Path("/usr/share/asterisk/moh")
SHORT_TRUTH = "_short_truth.json"
_OGG_MAX_S = 40.0
# (suffix, rate, channels) by file index % 6; None keeps the original bytes
MIX = ((None, 8000, 1), ("flac", 16000, 1), ("ogg", 22050, 1), ("mp3", 44100, 1),
       ("wav", 48000, 2), ("opus", 48000, 1))


def ensure_long(root: Path, hours: float, seed: int) -> tuple[Path, float, bool]:
    """(corpus dir, audio seconds, reused) of the long corpus; rebuilt unless its truth matches."""
    from audiomill.testing.corpus import LONG_TRUTH_NAME, make_long_corpus

    truth_path = root / LONG_TRUTH_NAME
    if truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        files_ok = all((root / f["path"]).is_file() for f in truth["files"])
        if (truth.get("hours"), truth.get("seed"), truth.get("unique_speech")) == (hours, seed, True) and files_ok:
            return root, sum(f["duration_s"] for f in truth["files"]), True
    shutil.rmtree(root, ignore_errors=True)
    make_long_corpus(root, hours, seed, unique_speech=True)
    truth = json.loads(truth_path.read_text())
    return root, sum(f["duration_s"] for f in truth["files"]), False


def ensure_short(root: Path, seed: int) -> tuple[Path, float, bool, str]:
    """(corpus dir, audio seconds, reused, origin) of the short mixed corpus."""
    truth_path = root / SHORT_TRUTH
    origin = "asterisk" if ASTERISK_SPEECH.is_dir() and ASTERISK_MUSIC.is_dir() else "generated"
    if truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        if truth.get("seed") == seed and truth.get("origin") == origin and \
                all((root / f["path"]).is_file() for f in truth["files"]):
            return root, sum(f["duration_s"] for f in truth["files"]), True, origin
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    items = _asterisk_items(seed) if origin == "asterisk" else _generated_items(seed)
    files = [_write_item(root, index, *item) for index, item in enumerate(items)]
    truth_path.write_text(json.dumps({"seed": seed, "origin": origin, "files": files}) + "\n")
    return root, sum(f["duration_s"] for f in files), False, origin


def _asterisk_items(seed: int) -> list[tuple[str, np.ndarray | Path, int, str]]:
    """(name, audio or original path, rate, kind): every prompt, and the music cut into pieces."""
    from audiomill.testing import signals

    rng = np.random.default_rng(seed)
    items: list[tuple[str, np.ndarray | Path, int, str]] = [
        (path.relative_to(ASTERISK_SPEECH).as_posix().replace("/", "_")[:-4], path, 8000, "speech")
        for path in sorted(ASTERISK_SPEECH.rglob("*.wav"))]
    for track in sorted(ASTERISK_MUSIC.glob("*.wav")):
        audio, rate = signals.read_audio(track)
        start = 0
        while start < audio.size - 5 * rate:
            length = int(rng.uniform(20, 60) * rate)
            items.append((f"moh_{track.stem}_{start // rate:04d}", audio[start:start + length], rate, "music"))
            start += length
    order = rng.permutation(len(items))  # mix kinds across parts
    return [items[i] for i in order]


def _generated_items(seed: int) -> list[tuple[str, np.ndarray | Path, int, str]]:
    from audiomill.testing import signals
    from audiomill.testing.speech_pool import UniqueSpeech

    speech, rng = UniqueSpeech(seed, 16000), np.random.default_rng(seed)
    items: list[tuple[str, np.ndarray | Path, int, str]] = []
    for index in range(300):
        if index % 10 == 9:
            items.append((f"music_{index:04d}", signals.music_like(rng.uniform(5, 30), 16000, seed=index), 16000, "music"))
        else:
            audio, _, _ = speech()
            items.append((f"speech_{index:04d}", audio, 16000, "speech"))
    return items


def _write_item(root: Path, index: int, name: str, audio: np.ndarray | Path, rate: int, kind: str) -> dict:
    from audiomill.testing import signals

    suffix, out_rate, channels = MIX[index % len(MIX)]
    if suffix is None and isinstance(audio, Path):
        path = root / f"{index:04d}_{name}.wav"
        shutil.copyfile(audio, path)
        samples, rate = signals.read_audio(path)
        return {"path": path.name, "kind": kind, "duration_s": samples.size / rate}
    if isinstance(audio, Path):
        audio, rate = signals.read_audio(audio)
    suffix = suffix or "wav"
    if suffix == "ogg":  # libsndfile's Vorbis encoder crashes on long single writes
        audio = audio[: int(_OGG_MAX_S * rate)]
    resampled = signals.resample(audio, rate, out_rate)
    data = np.stack([resampled, resampled], axis=1) if channels == 2 else resampled
    path = signals.write_audio(root / f"{index:04d}_{name}.{suffix}", data.astype(np.float32), out_rate)
    return {"path": path.name, "kind": kind, "duration_s": resampled.size / out_rate}
