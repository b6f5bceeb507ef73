"""``audiomill tokenizer eval``: how good a tokenizer is, in numbers.

- rate: exact bit/s from fps and codebook size, vs 128 kbps MP3 and 16-bit PCM; measured unigram
  entropy and an lzma-coded rate over the dataset's tokens; code use and perplexity.
- unit quality on a probe set of espeak-ng speech with phone alignments from the synthesiser:
  PNMI and purity of the tokens, and of MFCC k-means units (same K, fit on the same dataset
  sample) as the floor; and the same on real recordings with known text (``real_probe``), whose
  phones are placed by synthesis + DTW (``models/tokenizer/recording_align``).
- re-synthesis: decode(encode(x), speaker(x)) with the default vocoder; Whisper WER of the
  original and of the re-synthesis against the known text (probe set) or, for real recordings
  without text, WER of the re-synthesis against the original's transcript; speaker similarity;
  and ``wer_vocoder``, the WER of the vocoder run on the original's own log-mel (what a perfect
  decoder would reach with this vocoder).
- encode and decode speed (x realtime on one thread).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from audiomill import layout, storage
from audiomill.config import MODEL_CACHE_DIR
from audiomill.models.tokenizer import SemanticTokenizer
from audiomill.models.tokenizer.baseline import fit_mfcc_units, mfcc_frames
from audiomill.models.tokenizer.espeak_align import AlignedSpeech, synthesize
from audiomill.models.tokenizer.mel import log_mel
from audiomill.models.tokenizer.metrics import bitrate, code_usage, pnmi_purity
from audiomill.models.tokenizer.quantizer import Codebook
from audiomill.models.tokenizer.recording_align import align_recording
from audiomill.models.speaker_encoder import cosine_similarity
from audiomill.schema import SAMPLE_RATE

logger = logging.getLogger(__name__)

PROBE_SENTENCES = ("The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
                   "It is easy to tell the depth of a well.", "Rice is often served in round bowls.")
PROBE_VOICES = ("en-us", "en+f3")


@dataclass(frozen=True)
class Clip:
    """One evaluation recording: 16 kHz audio, its text if known, and where it came from."""

    name: str
    audio: np.ndarray
    text: str | None = None


@dataclass(frozen=True)
class EvalRequest:
    tokenizer: str
    asr_model: str  # CTranslate2 Whisper dir (or registry ref) that scores intelligibility
    registry: str = ""
    dataset_clips: tuple[Clip, ...] = ()  # code use, entropy, MFCC baseline fit
    probe_sentences: tuple[str, ...] = PROBE_SENTENCES
    probe_voices: tuple[str, ...] = PROBE_VOICES
    real_clips: tuple[Clip, ...] = ()
    real_probe: tuple[Clip, ...] = ()  # real recordings WITH text: unit quality on real speech
    seed: int = 0


@dataclass
class EvalReport:
    model_id: str
    rate: dict[str, float] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    resynthesis: dict[str, dict[str, float]] = field(default_factory=dict)
    speed: dict[str, float] = field(default_factory=dict)
    clips: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Asr:
    def __init__(self, ref: str, registry: str) -> None:
        from faster_whisper import WhisperModel

        from audiomill.models.registry import resolve_model

        path = resolve_model(ref, registry).local_dir(MODEL_CACHE_DIR)
        self.model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1)

    def __call__(self, audio: np.ndarray) -> str:
        # temperature 0 without fallback: the fallback samples, so the same audio could score differently
        segments, _ = self.model.transcribe(audio, beam_size=1, temperature=0.0, condition_on_previous_text=False,
                                            without_timestamps=True)
        return " ".join(s.text.strip() for s in segments)


def evaluate(req: EvalRequest, progress: Callable[[str], None] = logger.info) -> EvalReport:
    tok = SemanticTokenizer.load(req.tokenizer, req.registry)
    report = EvalReport(model_id=tok.version, rate=bitrate(tok.fps, tok.codebook_size))
    started = time.perf_counter()
    dataset_tokens = tok.encode_batch([c.audio for c in req.dataset_clips])
    seconds = sum(c.audio.size for c in req.dataset_clips) / SAMPLE_RATE
    if req.dataset_clips:
        report.speed["encode_x_realtime"] = seconds / (time.perf_counter() - started)
        report.usage = code_usage(np.concatenate(dataset_tokens), tok.codebook_size, tok.fps)
    progress("probe set: espeak-ng speech with phone alignments")
    probe = [(f"{voice}:{text}", synthesize(text, voice), text)
             for text in req.probe_sentences for voice in req.probe_voices]
    fit_on = [c.audio for c in req.dataset_clips] or [s.audio for _, s, _ in probe]
    baseline = fit_mfcc_units(fit_on, tok.codebook_size, req.seed)
    report.units = _unit_quality(tok, baseline, [speech for _, speech, _ in probe])
    if req.real_probe:
        progress(f"unit quality on {len(req.real_probe)} real recordings (phones by synthesis + DTW)")
        aligned = _aligned(req.real_probe)
        if aligned:
            report.units |= {f"real_{k}": v for k, v in _unit_quality(tok, baseline, aligned).items()}
        report.units["real_skipped"] = float(len(req.real_probe) - len(aligned))
    asr = _Asr(req.asr_model, req.registry)
    probe_clips = [Clip(name, speech.audio, text) for name, speech, text in probe]
    decode_time, decode_seconds = 0.0, 0.0
    for label, clips in (("generated", probe_clips), ("real", list(req.real_clips))):
        if not clips:
            continue
        progress(f"re-synthesis of {len(clips)} {label} clips")
        rows, spent = _resynthesis(tok, asr, clips)
        decode_time += spent
        decode_seconds += sum(c.audio.size for c in clips) / SAMPLE_RATE
        report.clips += [r | {"set": label} for r in rows]
        report.resynthesis[label] = {k: float(np.mean([r[k] for r in rows])) for k in
                                     ("wer_original", "wer_vocoder", "wer_resynth", "speaker_similarity")}
    if decode_time:
        report.speed["decode_x_realtime"] = decode_seconds / decode_time
    return report


def save_report(dataset: str, report: EvalReport) -> str:
    """Write ``report`` beside the dataset's token tables of its model (the dashboard's Tokens page
    reads it); returns the URI."""
    uri = layout.token_eval_uri(dataset, report.model_id)
    storage.write_text(uri, json.dumps(report.to_json() | {"created_unix": round(time.time(), 3)}, indent=2))
    return uri


def _aligned(clips: tuple[Clip, ...]) -> list[AlignedSpeech]:
    """Phone-aligned real clips; a clip without text or too short to align is left out (logged)."""
    out = []
    for clip in clips:
        try:
            out.append(align_recording(clip.audio, clip.text or ""))
        except ValueError as err:
            logger.warning("real probe %s left out: %s", clip.name, err)
    return out


def _unit_quality(tok: SemanticTokenizer, baseline: Codebook, probe: list[AlignedSpeech]) -> dict[str, float]:
    """PNMI / purity of the tokens and of the MFCC units against the probe's frame phones."""
    tokens, mfcc, labels = [], [], []
    for speech in probe:
        ids = tok.encode(speech.audio)
        tokens.append(ids)
        labels += speech.frame_labels(tok.fps, len(ids))
        mfcc.append(mfcc_frames(speech.audio)[: len(ids)])
    phone_ids = np.unique(labels, return_inverse=True)[1]
    pnmi, purity = pnmi_purity(np.concatenate(tokens), phone_ids)
    mfcc_pnmi, mfcc_purity = pnmi_purity(baseline.assign(np.concatenate(mfcc)), phone_ids)
    return {"pnmi": pnmi, "purity": purity, "mfcc_pnmi": mfcc_pnmi, "mfcc_purity": mfcc_purity,
            "phones": float(phone_ids.max() + 1), "frames": float(len(labels))}


def _resynthesis(tok: SemanticTokenizer, asr: _Asr, clips: list[Clip]) -> tuple[list[dict], float]:
    from audiomill.testing.whisper import word_error_rate

    rows, spent = [], 0.0
    for clip in clips:
        speaker = tok.speaker_embedding(clip.audio)
        started = time.perf_counter()
        resynth = tok.decode(tok.encode(clip.audio), speaker)
        spent += time.perf_counter() - started
        heard, heard_resynth = asr(clip.audio), asr(resynth)
        heard_vocoded = asr(tok.vocoder(log_mel(clip.audio, tok.mel_config)))  # the vocoder's own ceiling
        reference = clip.text if clip.text is not None else heard
        rows.append({"name": clip.name, "reference": reference, "original_text": heard,
                     "resynth_text": heard_resynth, "wer_original": word_error_rate(reference, heard),
                     "wer_vocoder": word_error_rate(reference, heard_vocoded),
                     "wer_resynth": word_error_rate(reference, heard_resynth),
                     "speaker_similarity": cosine_similarity(speaker, tok.speaker_embedding(resynth))})
    return rows, spent
