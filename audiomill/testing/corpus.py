"""Deterministic demo corpora with a truth file saying what a cleaning pipeline should do per file.

``make_demo_corpus`` writes a few dozen small files (speech in several voices and containers, real
human clips, non-speech, duplicates, broken files) plus ``_truth.json``. ``make_long_corpus``
writes hours of mixed 16 kHz audio for benchmarks. Same seed, same bytes.

Truth conventions: ``expect`` lists every acceptable outcome, each ``"kept"`` or
``"reject:<reason>"`` with a reason code from ``schema.RejectReason``. ``speech_spans`` holds one
``[start_s, end_s]`` per utterance (pauses inside a sentence are not split), measured with
``trim_silence_bounds`` on the file as PyAV decodes it, so codec priming delays are included.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiomill.schema import RejectReason
from audiomill.testing import signals

TRUTH_NAME = "_truth.json"
KINDS = ("speech", "noise", "music", "silence", "tone", "broken", "duplicate")
KEPT = "kept"

EN = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "A rainbow is a division of white light into many beautiful colors.",
    "We tested the new pipeline on one hour of audio before lunch.",
    "Six spoons of fresh snow peas and five thick slabs of blue cheese.",
    "The museum opens at nine in the morning and closes at six.",
    "Turn left at the second traffic light, then keep going straight.",
    "My brother plays the violin every evening after dinner.",
]
OTHER = {
    "de": ["Der schnelle braune Fuchs springt über den faulen Hund.", "Heute ist das Wetter sonnig."],
    "fr": ["Le vif renard brun saute par-dessus le chien paresseux.", "Il fait très beau à Paris."],
    "es": ["El veloz zorro marrón salta sobre el perro perezoso.", "Hoy hace buen tiempo en Madrid."],
}
# (relative stem, voice, language, format, sample rate, channels); sentence picked per scale round.
SPEECH_SPECS = [
    ("speech/en/en_us_16k", "en-us", "en", "wav", 16_000, 1),
    ("speech/en/en_f3_22k", "en+f3", "en", "wav", 22_050, 1),
    ("speech/de/de_44k", "de", "de", "wav", 44_100, 1),
    ("speech/fr/fr_f2_48k", "fr+f2", "fr", "wav", 48_000, 1),
    ("speech/es/es_stereo_16k", "es", "es", "wav", 16_000, 2),
    ("speech/en/en_m3_16k", "en+m3", "en", "flac", 16_000, 1),
    ("speech/de/de_f4_22k", "de+f4", "de", "ogg", 22_050, 1),
    ("speech/es/es_m2_16k", "es+m2", "es", "mp3", 16_000, 1),
    ("speech/fr/fr_m1_22k", "fr", "fr", "m4a", 22_050, 1),
    ("speech/en/en_us_f5_48k", "en-us+f5", "en", "opus", 48_000, 1),
]
DUP_SOURCE = "speech/en/en_f3_22k.wav"
LONG_SOURCE = "speech/en/long_40s_16k.flac"


def reject(reason: RejectReason) -> str:
    return f"reject:{reason.value}"


@dataclass
class CorpusFile:
    """One file of the corpus and what a pipeline should make of it. Times in seconds."""

    path: str  # relative to the corpus root, POSIX separators
    kind: str  # one of KINDS
    expect: list[str]  # acceptable outcomes: "kept" or "reject:<RejectReason value>"
    format: str | None = None  # what the bytes really are: wav, flac, ogg, mp3, opus, m4a
    sample_rate: int | None = None  # as PyAV decodes it (opus always decodes at 48 kHz)
    channels: int | None = None
    duration_s: float | None = None  # of the PyAV-decoded audio
    speech_spans: list[list[float]] = field(default_factory=list)
    text: str | None = None
    voice: str | None = None
    duplicate_of: str | None = None
    note: str | None = None
    bytes: int = 0
    sha256: str = ""

    def accepts(self, outcome: str) -> bool:
        return outcome in self.expect


@dataclass
class CorpusTruth:
    """The truth file of a demo corpus; ``files`` in the order they were written."""

    root: Path
    seed: int
    scale: int
    encoders: dict[str, str | None]
    files: list[CorpusFile]
    ignored: list[str]  # non-audio files a glob filter should skip, relative to root

    def by_expect(self) -> dict[str, list[CorpusFile]]:
        """Outcome -> files that accept it; a file with alternatives appears under each."""
        groups: dict[str, list[CorpusFile]] = {}
        for entry in self.files:
            for outcome in entry.expect:
                groups.setdefault(outcome, []).append(entry)
        return groups

    def by_kind(self) -> dict[str, list[CorpusFile]]:
        groups: dict[str, list[CorpusFile]] = {}
        for entry in self.files:
            groups.setdefault(entry.kind, []).append(entry)
        return groups

    def get(self, path: str) -> CorpusFile:
        return next(entry for entry in self.files if entry.path == path)

    def to_json(self) -> str:
        body = {
            "seed": self.seed,
            "scale": self.scale,
            "encoders": self.encoders,
            "ignored": self.ignored,
            "files": [dataclasses.asdict(entry) for entry in self.files],
        }
        return json.dumps(body, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, root: Path) -> CorpusTruth:
        body = json.loads((Path(root) / TRUTH_NAME).read_text(encoding="utf-8"))
        files = [CorpusFile(**entry) for entry in body.pop("files")]
        return cls(root=Path(root), files=files, **body)


class _Builder:
    """Writes files under ``root`` and records their truth; all randomness comes from ``rng``."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.rng = np.random.default_rng(seed)
        self.files: list[CorpusFile] = []
        self.encoders = signals.available_encoders()
        self._espeak_cache: dict[tuple[str, str], np.ndarray] = {}

    def speech(self, text: str, voice: str, sr: int) -> np.ndarray:
        if (text, voice) not in self._espeak_cache:
            self._espeak_cache[(text, voice)] = signals.espeak(text, voice)[0]
        return signals.resample(self._espeak_cache[(text, voice)], signals.ESPEAK_SAMPLE_RATE, sr)

    def place(self, utterances: list[np.ndarray], sr: int, gaps_s: list[float], noisy: bool):
        """Pad utterances with 0.5-1.5 s lead/tail and the given gaps; return audio and windows."""
        lead, tail = self.rng.uniform(0.5, 1.5, size=2)
        pieces = [signals.silence(lead, sr)]
        windows, pos = [], len(pieces[0])
        for utterance, gap in zip(utterances, gaps_s + [tail], strict=True):
            windows.append((pos / sr, (pos + len(utterance)) / sr))
            pieces += [utterance, signals.silence(gap, sr)]
            pos += len(utterance) + len(pieces[-1])
        audio = np.concatenate(pieces)
        if noisy:
            seed = int(self.rng.integers(2**31))
            audio += signals.white_noise(len(audio) / sr, sr, level_dbfs=-65.0, seed=seed)[: len(audio)]
        return audio, windows

    def write(self, rel: str, audio: np.ndarray, sr: int, fmt: str, windows, **fields) -> CorpusFile:
        """Write audio, decode it back with PyAV and record measured duration and speech spans."""
        path = signals.write_audio(self.root / rel, audio, sr, fmt)
        entry = CorpusFile(path=rel, format=fmt, channels=1 if audio.ndim == 1 else audio.shape[1], **fields)
        self.measure(entry, windows)
        return self.record(entry, path)

    def measure(self, entry: CorpusFile, windows) -> None:
        decoded, sr = signals.read_audio(self.root / entry.path)
        entry.sample_rate, entry.duration_s = sr, round(len(decoded) / sr, 4)
        edges = [0.0] + [(a[1] + b[0]) / 2 for a, b in zip(windows, windows[1:])] + [entry.duration_s]
        for lo, hi in zip(edges, edges[1:]):
            first, last = signals.trim_silence_bounds(decoded[int(lo * sr) : int(hi * sr)], sr)
            entry.speech_spans.append([round(lo + first, 3), round(lo + last, 3)])

    def record(self, entry: CorpusFile, path: Path) -> CorpusFile:
        data = path.read_bytes()
        entry.bytes, entry.sha256 = len(data), hashlib.sha256(data).hexdigest()
        self.files.append(entry)
        return entry

    def can_write(self, fmt: str) -> bool:
        return self.encoders.get(fmt) is not None


def make_demo_corpus(root: Path, *, seed: int = 0, scale: int = 1) -> CorpusTruth:
    """Write the demo corpus and ``root/_truth.json``; ``scale`` repeats the espeak speech set.

    Pass an empty or missing ``root``: files already there are overwritten or left untouched.
    At scale 1: 35 files, about 5 MB, under 2 s to generate.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    build = _Builder(root, seed)
    for round_ in range(scale):
        _add_speech_set(build, round_)
    _add_multi_utterance(build)
    _add_real_clips(build)
    _add_non_speech(build)
    _add_duplicates(build)
    _add_broken(build)
    (root / "README.txt").write_text(
        "audiomill demo corpus: generated test data. Truth per file is in _truth.json.\n", encoding="utf-8"
    )
    truth = CorpusTruth(root, seed, scale, build.encoders, build.files, ignored=["README.txt", TRUTH_NAME])
    (root / TRUTH_NAME).write_text(truth.to_json(), encoding="utf-8")
    return truth


def _sentence(lang: str, index: int) -> str:
    bank = EN if lang == "en" else OTHER[lang]
    return bank[index % len(bank)]


def _add_speech_set(build: _Builder, round_: int) -> None:
    suffix = f"_r{round_}" if round_ else ""
    for i, (stem, voice, lang, fmt, sr, channels) in enumerate(SPEECH_SPECS):
        if not build.can_write(fmt):
            continue
        text = _sentence(lang, i + round_)
        audio, windows = build.place([build.speech(text, voice, sr)], sr, [], noisy=i % 2 == 1)
        audio *= np.float32(10 ** (build.rng.uniform(-9.0, 0.0) / 20))
        if channels == 2:
            audio = np.stack([audio, 0.7 * audio], axis=1)
        build.write(f"{stem}{suffix}.{fmt}", audio, sr, fmt, windows, kind="speech", expect=[KEPT],
                    text=text, voice=voice)
    if round_ == 0 and build.can_write("mp3"):
        text = _sentence("en", 5)
        audio, windows = build.place([build.speech(text, "en-us+m4", 16_000)], 16_000, [], noisy=False)
        build.write("speech/en/en_mp3_named_wav.wav", audio, 16_000, "mp3", windows, kind="speech",
                    expect=[KEPT], text=text, voice="en-us+m4", note="MP3 data under a .wav name")


def _add_multi_utterance(build: _Builder) -> None:
    sr = 16_000
    first, second = EN[0], EN[1]
    utterances = [build.speech(first, "en", sr), build.speech(second, "en", sr)]
    audio, windows = build.place(utterances, sr, [2.0], noisy=True)
    build.write("speech/en/two_utterances_16k.wav", audio, sr, "wav", windows, kind="speech",
                expect=[KEPT], text=f"{first} {second}", voice="en", note="two utterances, 2 s apart")
    texts, utterances = [], []
    while sum(len(u) for u in utterances) < 32 * sr:
        texts.append(EN[len(texts) % len(EN)])
        # past the 8 sentences another voice reads them, so the file never repeats its own audio
        utterances.append(build.speech(texts[-1], "en-us" if len(texts) <= len(EN) else "en-gb-x-rp", sr))
    gaps = [float(g) for g in build.rng.uniform(0.3, 0.8, size=len(utterances) - 1)]
    audio, windows = build.place(utterances, sr, gaps, noisy=False)
    build.write("speech/en/long_40s_16k.flac", audio, sr, "flac", windows, kind="speech",
                expect=[KEPT], text=" ".join(texts), voice="en-us",
                note="about 40 s of speech with short pauses, to exercise max-length splits")


def _add_real_clips(build: _Builder) -> None:
    for clip in signals.alsa_clips():
        is_noise = clip.stem == "Noise"
        rel = f"noise/alsa_{clip.name}" if is_noise else f"speech/real/{clip.name}"
        (build.root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, build.root / rel)
        entry = CorpusFile(path=rel, kind="noise" if is_noise else "speech", format="wav", channels=1,
                           expect=[reject(RejectReason.NO_SPEECH)] if is_noise else [KEPT],
                           note=f"copy of alsa-utils {clip}")
        if is_noise:
            audio, entry.sample_rate = signals.read_audio(build.root / rel)
            entry.duration_s = round(len(audio) / entry.sample_rate, 4)
        else:
            entry.text, entry.voice = clip.stem.replace("_", " "), "human"
            build.measure(entry, [(0.0, 0.0)])
        build.record(entry, build.root / rel)


def _add_non_speech(build: _Builder) -> None:
    sr, no_speech = 16_000, [reject(RejectReason.NO_SPEECH)]
    seed = int(build.rng.integers(2**31))
    clips = [
        ("noise/white_5s_16k.wav", "noise", signals.white_noise(5.0, sr, -25.0, seed), "wav"),
        ("noise/music_8s_16k.flac", "music", signals.music_like(8.0, sr, seed), "flac"),
        ("noise/silence_6s_16k.flac", "silence", signals.silence(6.0, sr), "flac"),
        ("noise/tone_440hz_3s_16k.wav", "tone", signals.sine(440.0, 3.0, sr, -20.0), "wav"),
    ]
    for rel, kind, audio, fmt in clips:
        entry = CorpusFile(path=rel, kind=kind, expect=no_speech, format=fmt, sample_rate=sr,
                           channels=1, duration_s=round(len(audio) / sr, 4))
        build.record(entry, signals.write_audio(build.root / rel, audio, sr, fmt))


def _add_duplicates(build: _Builder) -> None:
    source = next(entry for entry in build.files if entry.path == DUP_SOURCE)
    copy_rel = "dups/en_f3_22k_copy.wav"
    (build.root / copy_rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(build.root / DUP_SOURCE, build.root / copy_rel)
    # dedup keeps one member of the group (best score, then longest, then smallest key: a hash of
    # the path), so the original may go too, as an exact or (next to the mp3) an audio duplicate
    group = [KEPT, reject(RejectReason.DUPLICATE_EXACT), reject(RejectReason.DUPLICATE_AUDIO)]
    source.expect = list(group)
    common = dict(kind="duplicate", expect=group, text=source.text, voice=source.voice,
                  duplicate_of=DUP_SOURCE)
    for entry in build.files:  # long_40s_16k speaks every EN sentence in en-us: the same audio
        if entry.kind == "speech" and entry.voice == "en-us" and entry.text in EN:
            entry.expect, entry.duplicate_of = [KEPT, reject(RejectReason.DUPLICATE_AUDIO)], LONG_SOURCE
            entry.note = "its sentence also occurs in long_40s_16k.flac, same voice: a near duplicate"
    long_entry = next(entry for entry in build.files if entry.path == LONG_SOURCE)
    long_entry.expect = [KEPT, reject(RejectReason.DUPLICATE_AUDIO)]  # a segment may go to en_us_16k's copy
    spans = [list(span) for span in source.speech_spans]
    entry = dataclasses.replace(source, path=copy_rel, speech_spans=spans, note="byte copy", **common)
    build.record(entry, build.root / copy_rel)
    audio, sr = signals.read_audio(build.root / DUP_SOURCE)
    windows = [tuple(span) for span in source.speech_spans]
    build.write("dups/en_f3_22k.flac", audio, sr, "flac", windows, note="same samples as FLAC", **common)
    if build.can_write("mp3"):
        audio_16k = signals.resample(audio, sr, 16_000)
        build.write("dups/en_f3_16k.mp3", audio_16k, 16_000, "mp3", windows,
                    note="resampled to 16 kHz and re-encoded as MP3", **common)


def _add_broken(build: _Builder) -> None:
    sr, root = 16_000, build.root
    text = EN[2]
    audio, _ = build.place([build.speech(text, "en", sr)], sr, [], noisy=False)
    full = signals.write_audio(root / "broken/truncated_data.wav", audio, sr, "wav").read_bytes()
    keep = 44 + 2 * int(len(audio) * 0.6)
    (root / "broken/truncated_data.wav").write_bytes(full[:keep])
    entry = CorpusFile(path="broken/truncated_data.wav", kind="broken", format="wav", channels=1,
                       expect=[KEPT, reject(RejectReason.DECODE_ERROR)], text=text, voice="en",
                       note="header promises more samples than present; PyAV and libsndfile decode the "
                       "60% present, which hold speech (text is cut off)")
    build.measure(entry, [(0.0, 0.0)])
    build.record(entry, root / entry.path)
    header_only = full[:4] + struct.pack("<I", 36) + full[8:40] + struct.pack("<I", 0)
    empty, not_audio = reject(RejectReason.EMPTY), reject(RejectReason.NOT_AUDIO)
    decode_error = reject(RejectReason.DECODE_ERROR)
    raw = {
        "broken/cut_header_20b.wav": (full[:20], [decode_error], "RIFF/WAVE magic, fmt chunk cut"),
        "broken/header_only.wav": (header_only, [empty], "valid 44-byte header, 0 samples"),
        "broken/empty.wav": (b"", [empty], "0 bytes"),
        "broken/text_renamed.wav": (b"This is a README, not audio.\n" * 40, [not_audio], "text"),
        "broken/random_bytes.mp3": (_random_bytes(build.rng, 4096), [not_audio, decode_error],
                                    "random bytes, no MPEG sync or ID3 at the start; PyAV cannot open it"),
    }
    for rel, (data, expect, note) in raw.items():
        (root / rel).write_bytes(data)
        build.record(CorpusFile(path=rel, kind="broken", expect=expect, note=note), root / rel)


def _random_bytes(rng: np.random.Generator, size: int) -> bytes:
    while True:
        data = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        if not (data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)):
            return data


# the long benchmark corpus lives in its own module; imported here for existing callers
from audiomill.testing.long_corpus import (LONG_SAMPLE_RATE, LONG_TRUTH_NAME, _sentence_pool,  # noqa: E402,F401
                                          make_long_corpus)
