"""Conversations on disk as a pyannote.database protocol (WAV + RTTM + UEM + database.yml).

pyannote's training API reads data through a ``pyannote.database`` protocol: per subset a list of
file ids (``uri``), RTTM reference turns and UEM annotated regions, and a ``Databases`` entry that
says where ``{uri}.wav`` lives. ``write_corpus`` writes that layout for labelled conversations;
``load_protocol`` reads it back with a preprocessor that loads each file's waveform with
soundfile, so pyannote never needs torchcodec (which cannot load here) to read audio.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

SAMPLE_RATE = 16_000
DATABASE = "AudiomillConversations"
PROTOCOL = f"{DATABASE}.SpeakerDiarization.Generated"
SUBSETS = ("train", "development")


@dataclass(frozen=True)
class LabeledAudio:
    """One recording and its reference turns ``(start_s, end_s, speaker)``; ``uri`` has no spaces."""

    uri: str
    audio: np.ndarray  # mono float32 at SAMPLE_RATE
    turns: tuple[tuple[float, float, str], ...]

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE


def write_corpus(root: Path, train: list[LabeledAudio], development: list[LabeledAudio]) -> Path:
    """Write ``root/{audio,lists,rttm,uem}`` and ``root/database.yml``; returns database.yml."""
    for name in ("audio", "lists", "rttm", "uem"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for subset, items in zip(SUBSETS, (train, development)):
        for item in items:
            sf.write(root / "audio" / f"{item.uri}.wav", item.audio, SAMPLE_RATE, subtype="PCM_16")
        (root / "lists" / f"{subset}.lst").write_text("".join(f"{i.uri}\n" for i in items))
        (root / "rttm" / f"{subset}.rttm").write_text("".join(_rttm_lines(i) for i in items))
        (root / "uem" / f"{subset}.uem").write_text(
            "".join(f"{i.uri} 1 0.000 {i.duration_s:.3f}\n" for i in items))
    subsets = {s: {"uri": f"lists/{s}.lst", "annotation": f"rttm/{s}.rttm", "annotated": f"uem/{s}.uem"}
               for s in SUBSETS}
    database = {"Databases": {DATABASE: "audio/{uri}.wav"},
                "Protocols": {DATABASE: {"SpeakerDiarization": {"Generated": subsets}}}}
    path = root / "database.yml"
    path.write_text(yaml.safe_dump(database, sort_keys=False))
    return path


def _rttm_lines(item: LabeledAudio) -> str:
    return "".join(f"SPEAKER {item.uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>\n"
                   for start, end, speaker in item.turns)


def load_protocol(database_yml: Path):
    """The protocol in ``database_yml``; every file carries ``waveform``/``sample_rate``."""
    from pyannote.database import FileFinder, registry

    registry.load_database(str(database_yml))
    return registry.get_protocol(PROTOCOL, preprocessors={
        "audio": FileFinder(), "waveform": _waveform_of, "sample_rate": lambda _: SAMPLE_RATE})


def _waveform_of(file) -> "torch.Tensor":
    return read_waveform(str(file["audio"]))


@functools.lru_cache(maxsize=256)
def read_waveform(path: str) -> "torch.Tensor":
    """(1, samples) float32 tensor of a 16 kHz mono file (cached: training crops it many times)."""
    import torch

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: {rate} Hz, expected {SAMPLE_RATE} Hz mono")
    return torch.from_numpy(np.ascontiguousarray(audio.mean(axis=1)))[None, :]


def read_corpus_dir(directory: Path) -> list[LabeledAudio]:
    """A user's ``NAME.wav`` + ``NAME.rttm`` pairs (16 kHz mono WAV, standard RTTM), sorted by name."""
    items = []
    for wav in sorted(directory.glob("*.wav")):
        rttm = wav.with_suffix(".rttm")
        if not rttm.is_file():
            raise FileNotFoundError(f"{wav} has no {rttm.name} beside it (reference turns in RTTM)")
        turns = []
        for line in rttm.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 8 and fields[0] == "SPEAKER":
                start, duration = float(fields[3]), float(fields[4])
                turns.append((start, start + duration, fields[7]))
        audio = read_waveform(str(wav))[0].numpy()
        items.append(LabeledAudio(wav.stem.replace(" ", "_"), audio, tuple(sorted(turns))))
    if not items:
        raise FileNotFoundError(f"{directory} holds no .wav files")
    return items
