"""Phone alignments for REAL recordings with known text: synthesis plus DTW (the aeneas method).

espeak-ng speaks the text with its phone events (``espeak_align.synthesize``); cepstra of the
synthetic and of the real recording (100 Hz, 12 MFCCs without c0, minus each utterance's mean
over its loud frames so the channel drops out) are aligned by dynamic time warping, and every
phone start moves along the path onto the recording's time line. DTW holds an n x m matrix, so
this is for clips of seconds (prompts, utterances), not for hour-long files. Boundaries are
approximate (tens of ms), so absolute PNMI against them is lower than against a forced aligner;
every unit system scored on the same alignment meets the same error, so they rank fairly. It is
the honest reference available without downloaded aligners.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct

from audiomill.models.tokenizer.compare import dtw_path
from audiomill.models.tokenizer.espeak_align import AlignedSpeech, synthesize
from audiomill.models.tokenizer.mel import MelConfig, log_mel
from audiomill.schema import SAMPLE_RATE

FRAME_S = MelConfig().hop / SAMPLE_RATE  # 10 ms


def cepstra(audio: np.ndarray) -> np.ndarray:
    """(100 Hz frames, 12) MFCCs c1..c12 of a 16 kHz clip, minus their mean over the frames
    within 30 dB of the loudest (the channel's offset; pauses would bias a plain mean)."""
    mel = log_mel(audio)
    out = dct(mel, type=2, axis=1, norm="ortho")[:, 1:13]
    if len(out) == 0:
        return out.astype(np.float64)
    energy = mel.mean(axis=1)
    loud = energy >= energy.max() - 30.0 / 20.0 * np.log(10.0)
    return (out - out[loud].mean(axis=0, keepdims=True)).astype(np.float64)


def align_recording(audio: np.ndarray, text: str, voice: str = "en-us") -> AlignedSpeech:
    """The recording with espeak-ng's phones of ``text`` placed on its time line by DTW."""
    if not text.strip():
        raise ValueError("no text to align")
    synthetic = synthesize(text, voice)
    real, synth = cepstra(audio), cepstra(synthetic.audio)
    if len(real) == 0 or len(synth) == 0:
        raise ValueError("recording or synthesis shorter than one frame")
    squared = (synth ** 2).sum(axis=1)[:, None] + (real ** 2).sum(axis=1)[None, :] - 2.0 * synth @ real.T
    cost = np.sqrt(np.maximum(squared, 0.0))
    path = dtw_path(cost)
    first_real = np.full(len(synth), -1, np.int64)  # the first real frame each synthetic frame meets
    for s, r in path[::-1]:
        first_real[s] = r
    starts = []
    for start in synthetic.starts_s:
        frame = min(int(round(start / FRAME_S)), len(synth) - 1)
        starts.append(float(first_real[frame]) * FRAME_S)
    return AlignedSpeech(np.asarray(audio, np.float32), synthetic.phones, tuple(np.maximum.accumulate(starts)))
