"""Speech that does not repeat: random sentences from a word list, spoken by espeak-ng.

Benchmarks need hours of speech whose duplicate rate is known. A fixed pool of sentences makes
almost every segment a duplicate of another; here each utterance is new text (2-3 random
sentences of 6-12 words) in one of several voices, speeds and pitches, and only a chosen share
(``duplicate_rate``) of utterances repeats an earlier one sample for sample.
"""

from __future__ import annotations

import numpy as np

from audiomill.testing import signals

WORDS = tuple("""
the a one two three some many every each this that these those my your his her our their
river mountain garden station window kitchen market village harbor forest bridge library
teacher farmer doctor driver sailor painter baker student neighbor brother sister captain
boat train bicycle letter basket lantern blanket engine ticket candle mirror pocket ladder
bread milk apple orange coffee honey cheese butter pepper sugar water paper silver copper
walked carried opened painted counted folded lifted pulled pushed watched answered visited
bought sold found lost kept built broke cleaned closed crossed dropped filled followed
quickly slowly quietly early late often never always almost nearly rather really simply
under over behind beside between across along around before after during without within
green yellow purple narrow heavy gentle bright famous hidden honest lucky modern ancient
morning evening winter summer autumn spring monday friday sunday tonight yesterday tomorrow
seven eleven twenty forty hundred thousand dozen half quarter double
""".split())
VOICES = ("en-us", "en+f3", "en+m3", "en+f2", "en+m1", "en-gb", "en+f4", "en+m2")


def random_sentence(rng: np.random.Generator) -> str:
    words = [WORDS[int(i)] for i in rng.integers(len(WORDS), size=int(rng.integers(6, 13)))]
    return " ".join(words).capitalize() + "."


class UniqueSpeech:
    """Callable giving (16 kHz float32 audio, first_s, last_s) of a new utterance on each call.

    With probability ``duplicate_rate`` the utterance is an exact repeat of an earlier one (a
    planted duplicate); otherwise it is fresh random text. Deterministic for a seed.
    """

    def __init__(self, seed: int, sr: int = 16_000, duplicate_rate: float = 0.05) -> None:
        self.rng = np.random.default_rng(seed)
        self.sr = sr
        self.duplicate_rate = duplicate_rate
        self.made: list[tuple[np.ndarray, float, float]] = []
        self.repeats = 0

    def __call__(self) -> tuple[np.ndarray, float, float]:
        if self.made and self.rng.random() < self.duplicate_rate:
            self.repeats += 1
            return self.made[int(self.rng.integers(len(self.made)))]
        text = " ".join(random_sentence(self.rng) for _ in range(int(self.rng.integers(2, 4))))
        voice = VOICES[int(self.rng.integers(len(VOICES)))]
        audio, sr = signals.espeak(text, voice, speed=int(self.rng.integers(140, 200)),
                                   pitch=int(self.rng.integers(25, 75)))
        audio = signals.resample(audio, sr, self.sr)
        audio.flags.writeable = False
        item = (audio, *signals.trim_silence_bounds(audio, self.sr))
        self.made.append(item)
        return item
