"""``SemanticTokenizer``: the one object other code uses to turn speech into tokens and back.

An artifact is a directory (local, or a registry version ``name@V`` / ``name@production``)::

    tokenizer.json        format, fps, codebook size, mel/decoder config, provenance
    codebook.npz          k-means centroids + the standardisation of encoder states
    decoder.pt            TokenDecoder state dict
    default_speaker.npy   mean training speaker embedding (decode without a reference)
    encoder/              the frozen Whisper encoder (CTranslate2 files), copied in

so one registered version carries everything it needs and its sha256 pins all of it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiomill.config import MODEL_CACHE_DIR
from audiomill.models.tokenizer.mel import MelConfig
from audiomill.models.tokenizer.quantizer import Codebook
from audiomill.models.tokenizer.semantic import FPS, EncoderOptions, WhisperEncoder

logger = logging.getLogger(__name__)

FORMAT = 1
CONFIG_FILE = "tokenizer.json"
CODEBOOK_FILE = "codebook.npz"
DECODER_FILE = "decoder.pt"
SPEAKER_FILE = "default_speaker.npy"
ENCODER_DIR = "encoder"
_ENCODER_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json",
                  "preprocessor_config.json")


@dataclass(frozen=True)
class TokenizerParts:
    """What a training job hands to :func:`save_tokenizer`."""

    encoder_dir: str
    encoder_id: str
    codebook: Codebook
    decoder_state: dict[str, Any]
    decoder_config: dict[str, int]
    default_speaker: np.ndarray
    mel: MelConfig
    window_s: float
    extra: dict[str, Any]


def save_tokenizer(directory: str, parts: TokenizerParts) -> Path:
    """Write an artifact directory (see the module docstring); returns its path."""
    import torch

    root = Path(directory)
    (root / ENCODER_DIR).mkdir(parents=True, exist_ok=True)
    for name in _ENCODER_FILES:
        if (Path(parts.encoder_dir) / name).is_file():
            shutil.copyfile(Path(parts.encoder_dir) / name, root / ENCODER_DIR / name)
    parts.codebook.save(str(root / CODEBOOK_FILE))
    torch.save(parts.decoder_state, root / DECODER_FILE)
    np.save(root / SPEAKER_FILE, np.asarray(parts.default_speaker, np.float32))
    config = {"format": FORMAT, "fps": FPS, "codebook_size": parts.codebook.size,
              "encoder": {"source": parts.encoder_id, "window_s": parts.window_s},
              "mel": parts.mel.to_json(), "decoder": parts.decoder_config} | parts.extra
    (root / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
    return root


class SemanticTokenizer:
    """Speech <-> 25 Hz semantic tokens. Components load on first use, so a tokenizing worker
    never loads the decoder and a decoding one never loads the encoder.

    ``version`` is the model id to record next to tokens (``name@3`` or ``dir@sha256:...``).
    """

    def __init__(self, directory: str, version: str, *, device: str = "cpu", threads: int = 1,
                 vocoder: str = "", registry: str = "") -> None:
        self.directory = Path(directory)
        path = self.directory / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{self.directory} is not a tokenizer (no {CONFIG_FILE}); train one with "
                                    f"`audiomill tokenizer train DATASET --name NAME`")
        self.config = json.loads(path.read_text())
        if self.config.get("format") != FORMAT:
            raise ValueError(f"{path}: tokenizer format {self.config.get('format')} is not {FORMAT}")
        self.version = version
        self.fps = float(self.config["fps"])
        self.codebook_size = int(self.config["codebook_size"])
        self.codebook = Codebook.load(str(self.directory / CODEBOOK_FILE))
        self.mel_config = MelConfig(**self.config["mel"])
        self._options = EncoderOptions(window_s=float(self.config["encoder"]["window_s"]), device=device,
                                       compute_type="int8" if device == "cpu" else "int8_float16",
                                       threads=threads)
        self._vocoder_spec, self._registry = vocoder, registry

    @classmethod
    def load(cls, ref_or_dir: str, registry: str = "", *, device: str = "cpu", threads: int = 1,
             vocoder: str = "") -> SemanticTokenizer:
        """A tokenizer from a directory or a registry reference (``name@production``, ``name@3``).

        ``device``/``threads`` say where the encoder runs (CTranslate2: ``cpu`` int8 or ``cuda``);
        ``vocoder`` is ``griffin-lim`` (default) or a vocoder directory / registry reference.
        """
        from audiomill.models.registry import resolve_model

        resolved = resolve_model(ref_or_dir, registry)
        return cls(resolved.local_dir(MODEL_CACHE_DIR), resolved.model_id, device=device, threads=threads,
                   vocoder=vocoder, registry=registry)

    @property
    def bitrate_bps(self) -> float:
        """Exact rate of the token stream: fps x log2(codebook size), bit/s."""
        return self.fps * math.log2(self.codebook_size)

    @functools.cached_property
    def _encoder(self) -> WhisperEncoder:
        return WhisperEncoder(str(self.directory / ENCODER_DIR), self._options)

    @functools.cached_property
    def _decoder(self):  # noqa: ANN202 - TokenDecoder (torch imported lazily)
        import torch

        from audiomill.models.tokenizer.decoder import DecoderConfig, TokenDecoder

        model = TokenDecoder(DecoderConfig(**self.config["decoder"]))
        model.load_state_dict(torch.load(self.directory / DECODER_FILE, map_location="cpu", weights_only=True))
        return model.eval()

    @functools.cached_property
    def _speaker_encoder(self):  # noqa: ANN202 - SpeakerEncoder
        from audiomill.models.speaker_encoder import SpeakerEncoder

        return SpeakerEncoder()

    @functools.cached_property
    def vocoder(self):  # noqa: ANN201 - a vocoder.Vocoder
        from audiomill.models.tokenizer.vocoder import load_vocoder

        return load_vocoder(self._vocoder_spec, self.mel_config, self._registry)

    def encoder_states(self, audio: np.ndarray) -> np.ndarray:
        """(frames, dim) float32 Whisper encoder states at ``fps``."""
        return self._encoder.states(audio)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """float32 16 kHz mono -> int32 token ids at ``fps`` (``len(audio) // 640`` of them)."""
        return self.codebook.assign(self._encoder.states(audio))

    def encode_batch(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        return [self.codebook.assign(s) for s in self._encoder.states_batch(clips)]

    def speaker_embedding(self, audio: np.ndarray) -> np.ndarray:
        """Unit-norm 256-d Resemblyzer d-vector of a 16 kHz clip."""
        return self._speaker_encoder.embed(audio)

    def decode_mel(self, tokens: np.ndarray, speaker: np.ndarray | None = None) -> np.ndarray:
        if speaker is None:
            speaker = np.load(self.directory / SPEAKER_FILE)
        tokens = np.asarray(tokens)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise ValueError(f"token ids must lie in [0, {self.codebook_size})")
        return self._decoder.decode(tokens, speaker)

    def decode(self, tokens: np.ndarray, speaker: np.ndarray | None = None) -> np.ndarray:
        """Token ids (+ a speaker embedding; default: the training mean) -> float32 16 kHz audio."""
        return self.vocoder(self.decode_mel(tokens, speaker))
