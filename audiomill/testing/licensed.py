"""A tiny licensed corpus (espeak-ng speech + a crawl-style manifest) and the dataset clean makes of it.

Used by the data loader, export, takedown and provenance tests, which all need a real dataset:
several shards, sources from several domains under several licenses, a policy-held segment (held/)
and a dedup-dropped duplicate (held-dup tar, dedup.parquet, a cross-run dedup index).

Manifest rows carry what a crawl records (``source_url``, ``license``, ``fetched_unix``), so the
dataset's ``metadata_json`` holds each source's provenance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiomill.schema import SAMPLE_RATE
from audiomill.testing import signals

MANIFEST_NAME = "manifest.jsonl"
FETCHED_UNIX = 1_796_000_000.0  # 2026-11-30, fixed so datasets are byte-identical across runs

# (file, voice, sentences, license, source url, how the audio is damaged)
SOURCES = [
    ("alpha.wav", "en-us", ("The museum opens at nine in the morning.", "Please close the door behind you."),
     "CC-BY-4.0", "https://a.example.org/ep/alpha.wav", None),
    ("bravo.wav", "en+f3", ("Turn left at the second traffic light.", "My brother plays the violin."),
     "CC-BY-4.0", "https://a.example.org/ep/bravo.wav", None),
    ("charlie.wav", "en+m3", ("We tested the new pipeline before lunch.", "A rainbow divides white light."),
     "CC0-1.0", "https://b.example.net/charlie.wav", None),
    ("delta.wav", "en-us+f5", ("Six spoons of fresh snow peas.", "The quick brown fox jumps over the dog."),
     "CC0-1.0", "https://b.example.net/delta.wav", "clipped"),
    ("echo.wav", "de", ("Heute ist das Wetter sonnig.", "Der Hund schläft im Garten."),
     "proprietary", "https://c.example.com/echo.wav", None),
    ("foxtrot.wav", None, (), "CC0-1.0", "https://b.example.net/foxtrot.wav", "copy-of-alpha"),
]


@dataclass(frozen=True)
class LicensedCorpus:
    root: Path
    manifest: Path  # the clean input: jsonl rows with path, source_url, license, fetched_unix


def _speech(sentences: tuple[str, ...], voice: str) -> np.ndarray:
    pieces = [signals.silence(0.5, SAMPLE_RATE)]
    for text in sentences:
        audio, sr = signals.espeak(text, voice)
        pieces += [signals.resample(audio, sr, SAMPLE_RATE), signals.silence(1.5, SAMPLE_RATE)]
    return np.concatenate(pieces).astype(np.float32)


def make_licensed_corpus(root: Path) -> LicensedCorpus:
    """Write the files and ``manifest.jsonl`` under ``root`` (about 40 s of 16 kHz audio)."""
    audio_dir = Path(root) / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, np.ndarray] = {}
    rows = []
    for name, voice, sentences, license_, url, damage in SOURCES:
        if damage == "copy-of-alpha":
            audio = written["alpha.wav"]
        else:
            audio = _speech(sentences, voice)
        if damage == "clipped":  # the default policy rejects it; its audio is held for curate
            audio = np.clip(audio * 30, -1.0, 1.0).astype(np.float32)
        written[name] = audio
        signals.write_audio(audio_dir / name, audio, SAMPLE_RATE)
        rows.append({"path": f"audio/{name}", "source_url": url, "license": license_,
                     "fetched_unix": FETCHED_UNIX})
    manifest = Path(root) / MANIFEST_NAME
    manifest.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return LicensedCorpus(Path(root), manifest)


def clean_dataset(inputs: list[str], out: Path, *sets: str, timeout_s: float = 600) -> dict:
    """Run ``audiomill clean`` (local runner, 2 sources per part) and return its manifest."""
    command = [sys.executable, "-m", "audiomill", "clean", *inputs, "--out", str(out), "--runner", "local",
               "--json", "--set", "ingest.part_size=2"]
    for assignment in sets:
        command += ["--set", assignment]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"clean failed ({result.returncode}): {result.stderr[-2000:]}")
    return json.loads(result.stdout)


@dataclass(frozen=True)
class LicensedDataset:
    corpus: LicensedCorpus
    root: Path  # the cleaned dataset
    dedup_index: Path  # its cross-run dedup index directory
    manifest: dict


def build_licensed_dataset(workdir: Path, *sets: str) -> LicensedDataset:
    """Corpus under ``workdir/corpus``, dataset under ``workdir/dataset`` (about 20 s on 2 cores)."""
    corpus = make_licensed_corpus(Path(workdir) / "corpus")
    index = Path(workdir) / "dedup-index"
    out = Path(workdir) / "dataset"
    manifest = clean_dataset([str(corpus.manifest)], out, f"dedup.index={index}", *sets)
    return LicensedDataset(corpus, out, index, manifest)
