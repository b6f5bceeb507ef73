"""A real two-speaker conversation with a reference RTTM, fetched from a PyPI wheel by version.

``pyannote.audio`` 4.0.7 (MIT) ships ``pyannote/audio/sample/sample.wav`` (30 s, 16 kHz mono,
two speakers, turns with short overlaps) and ``sample.rttm`` (its reference turns). Only the
wheel is downloaded (``pip download --no-deps``: pyannote.audio itself would pull torchaudio) and
only those two files are extracted, into a cache directory; nothing is committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from audiomill.testing.mixtures import Conversation, Turn

PACKAGE, VERSION = "pyannote.audio", "4.0.7"
_MEMBERS = ("pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.rttm")


def default_cache_dir() -> Path:
    """``$AUDIOMILL_TEST_CACHE`` or ``~/.cache/audiomill/test-data``."""
    root = os.environ.get("AUDIOMILL_TEST_CACHE") or Path.home() / ".cache" / "audiomill" / "test-data"
    return Path(root)


def fetch_pyannote_sample(cache_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(sample.wav, sample.rttm) of pyannote.audio 4.0.7, downloaded once into ``cache_dir``."""
    target = Path(cache_dir or default_cache_dir()) / f"{PACKAGE}-{VERSION}"
    paths = tuple(target / Path(m).name for m in _MEMBERS)
    if all(p.is_file() for p in paths):
        return paths  # type: ignore[return-value]
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as download:
        command = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps",
                   "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", download]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        wheels = sorted(Path(download).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(f"could not download {PACKAGE}=={VERSION} from the package index "
                               f"({' '.join(command)}): {result.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member, path in zip(_MEMBERS, paths):
                partial = path.with_suffix(path.suffix + ".part")
                partial.write_bytes(wheel.read(member))
                partial.replace(path)
    return paths  # type: ignore[return-value]


def read_rttm(path: str | Path) -> tuple[Turn, ...]:
    """Reference turns of an RTTM file (SPEAKER lines: onset and duration in seconds)."""
    turns = []
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append(Turn(fields[7], round(start, 3), round(start + duration, 3)))
    return tuple(sorted(turns, key=lambda t: (t.start_s, t.speaker)))


def pyannote_sample(cache_dir: str | Path | None = None) -> Conversation:
    """The real conversation as 16 kHz mono float32 audio and its reference turns."""
    import soundfile as sf

    wav, rttm = fetch_pyannote_sample(cache_dir)
    audio, sample_rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if sample_rate != 16_000:
        raise ValueError(f"{wav}: expected 16 kHz, got {sample_rate} Hz")
    return Conversation(np.ascontiguousarray(audio.mean(axis=1)), read_rttm(rttm))
