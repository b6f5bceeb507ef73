"""Speech with phone alignments from the espeak-ng library (``espeakng-loader`` ships it + data).

The synthesiser reports a PHONEME event (mnemonic, position in ms) for every phone it speaks, so
the audio and its phone boundaries come from one synthesis: an honest frame-level reference for
unit quality (PNMI) on generated speech. Real recordings have no such truth here.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from dataclasses import dataclass

import numpy as np

from audiomill.schema import SAMPLE_RATE

_SYNCHRONOUS = 2
_PHONEME_EVENTS = 0x0001
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
SILENCE = "_"
_lock = threading.Lock()


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class AlignedSpeech:
    """16 kHz audio and its phones: ``phones[i]`` spans ``[starts_s[i], starts_s[i+1])``."""

    audio: np.ndarray
    phones: tuple[str, ...]
    starts_s: tuple[float, ...]

    def frame_labels(self, fps: float, frames: int) -> list[str]:
        """The phone under the centre of each of ``frames`` frames at ``fps`` (silence before the first)."""
        centres = (np.arange(frames) + 0.5) / fps
        index = np.searchsorted(np.asarray(self.starts_s), centres, side="right") - 1
        return [phone_class(self.phones[i]) if i >= 0 else SILENCE for i in index]


def phone_class(phone: str) -> str:
    """A phone without stress marks (``'aU`` -> ``aU``); every pause (``_``, ``_:``) is ``_``."""
    phone = phone.lstrip("',%=")
    return SILENCE if not phone or phone.startswith(SILENCE) else phone


@functools.cache
def _library() -> tuple[ctypes.CDLL, int]:
    try:
        import espeakng_loader
    except ImportError:
        raise RuntimeError("phone alignments need the espeak-ng library: pip install espeakng-loader") from None
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), _PHONEME_EVENTS)
    if rate <= 0:
        raise RuntimeError("espeak-ng failed to initialise from espeakng-loader's data")
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    return lib, rate


def synthesize(text: str, voice: str = "en-us") -> AlignedSpeech:
    """Speak ``text`` with espeak-ng ``voice``; return 16 kHz audio and its phone alignment."""
    from audiomill.testing.signals import resample

    lib, rate = _library()
    chunks: list[np.ndarray] = []
    events: list[tuple[str, float]] = []

    def collect(wav, count, event_ptr) -> int:  # noqa: ANN001 - ctypes pointers
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768.0)
        i = 0
        while event_ptr[i].type != 0:
            if event_ptr[i].type == _EVENT_PHONEME:
                events.append((event_ptr[i].id.string.decode("utf-8", "replace"), event_ptr[i].audio_position / 1000))
            i += 1
        return 0

    callback = _CALLBACK(collect)
    with _lock:
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        data = text.encode("utf-8") + b"\0"
        lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
    audio = resample(np.concatenate(chunks) if chunks else np.zeros(0, np.float32), rate, SAMPLE_RATE)
    phones = tuple(p or SILENCE for p, _ in events)
    return AlignedSpeech(np.asarray(audio, np.float32), phones, tuple(t for _, t in events))


def phonemes(text: str, voice: str = "en-us") -> list[list[str]]:
    """espeak-ng's phones of ``text``, one list per word (stress marks stripped), in spoken order.

    The same phonemizer espeak-ng speaks with, so a text's phones match the speech it makes; the
    generation model reads text through it.
    """
    lib, _ = _library()
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    words: list[list[str]] = []
    buffer = ctypes.c_char_p(text.encode("utf-8"))
    pointer = ctypes.pointer(buffer)
    with _lock:
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        while pointer.contents.value:  # one clause per call; the pointer moves on
            clause = lib.espeak_TextToPhonemes(pointer, _CHARS_UTF8, ord(" ") << 8) or b""
            for word in clause.decode("utf-8", "replace").split("  "):
                phones = [phone_class(p) for p in word.split(" ") if p]
                phones = [p for p in phones if p != SILENCE]
                if phones:
                    words.append(phones)
    return words
