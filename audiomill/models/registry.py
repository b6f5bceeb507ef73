"""Versioned model artifacts under a registry root: a local directory or an ``s3://`` prefix.

Layout under the root (all I/O through ``audiomill.storage``)::

    <name>/<version>/files/...      the artifact's files exactly as registered
    <name>/<version>/meta.json      written last: a version exists once its meta.json does
    <name>/stages.json              {"stages": {"production": 3}, "history": [...]}

Versions are integers counting from 1. Pipelines name models ``name@3``, ``name@production``
(any promoted stage) or ``name@latest``; ``resolve_model`` turns such a reference, or a plain
local directory, into a ``ResolvedModel`` whose exact version and sha256 go into the dataset
manifest. A version's ``sha256`` digests its file list (``sha256sum``-style lines, sorted by
path), so the same files give the same digest in any registry or plain directory.

Registering the same name from two processes at once is not guarded: both may pick the same next
version, and the second ``meta.json`` write fails loudly only if it sees the first one.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audiomill import storage

logger = logging.getLogger(__name__)

REGISTRY_ENV = "AUDIOMILL_MODEL_REGISTRY"
DATA_HOME_ENV = "XDG_DATA_HOME"
META_FILE = "meta.json"
STAGES_FILE = "stages.json"
FILES_DIR = "files"
_CACHE_MARKER = ".audiomill-complete"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REF = re.compile(rf"^(?P<name>{_NAME})@(?P<selector>[A-Za-z0-9._-]+)$")
_STAGE = re.compile(r"^[a-z][a-z0-9_-]*$")
_CHUNK = 8 * 1024 * 1024


class RegistryError(ValueError):
    """A bad reference, an unknown name/version/stage, or files that do not match their digest."""


@dataclass(frozen=True)
class ModelFile:
    path: str  # relative, "/"-separated
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ModelVersion:
    """One registered artifact. ``metrics`` are free-form numbers (e.g. ``{"wer": 0.12}``)."""

    name: str
    version: int
    created_unix: float
    files: tuple[ModelFile, ...]
    sha256: str
    parent: int | None = None
    training_data: str | None = None
    round: int | None = None  # self-labeling round that produced it
    description: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"ref": self.ref}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelVersion:
        files = tuple(ModelFile(**f) for f in data["files"])
        keep = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "files"}
        return cls(files=files, **keep)


@dataclass(frozen=True)
class ResolvedModel:
    """A model pinned for a job: what to record (``model_id``, ``sha256``) and where to load it.

    ``ref`` is exact (``name@3``, never a stage) or an absolute local directory. Picklable, so it
    travels to workers; each worker calls ``local_dir`` (S3 registries download once per machine).
    """

    ref: str
    model_id: str
    sha256: str
    registry: str | None = None
    files: tuple[ModelFile, ...] = ()

    def local_dir(self, cache_dir: str) -> str:
        if self.registry is None:
            return self.ref
        name, version = self.ref.rsplit("@", 1)
        return ModelRegistry(self.registry).materialize(name, int(version), self.files, cache_dir)

    def manifest_entry(self) -> dict[str, Any]:
        return {"id": self.model_id, "ref": self.ref, "sha256": self.sha256,
                "registry": storage.redact(self.registry) if self.registry else None}


def parse_ref(text: str) -> tuple[str, str] | None:
    """``(name, selector)`` of ``name@selector``; None when ``text`` is not a registry reference."""
    match = _REF.match(text.strip())
    return (match["name"], match["selector"]) if match else None


def hash_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_digest(files: tuple[ModelFile, ...] | list[ModelFile]) -> str:
    """sha256 of ``"<sha256>  <path>\\n"`` lines sorted by path (the ``sha256sum`` format)."""
    lines = "".join(f"{f.sha256}  {f.path}\n" for f in sorted(files, key=lambda f: f.path))
    return hashlib.sha256(lines.encode()).hexdigest()


def scan_dir(directory: str | Path) -> tuple[ModelFile, ...]:
    """Every regular, non-hidden file under ``directory`` with size and sha256, sorted by path."""
    root = Path(directory)
    if not root.is_dir():
        raise RegistryError(f"{root} is not a directory")
    paths = sorted(p for p in root.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    files = []
    for path in paths:
        stat = path.stat()
        files.append(ModelFile(path.relative_to(root).as_posix(), stat.st_size,
                               _hash_unchanged(str(path.resolve()), stat.st_size, stat.st_mtime_ns)))
    return tuple(files)


@functools.lru_cache(maxsize=1024)
def _hash_unchanged(path: str, size: int, mtime_ns: int) -> str:
    """``hash_file``, remembered while the file keeps its size and mtime (CLI check + job run)."""
    return hash_file(path)


def default_registry_root() -> str:
    """The registry every command uses when none is given: ``$AUDIOMILL_MODEL_REGISTRY``, else
    ``$XDG_DATA_HOME/audiomill/registry`` (``~/.local/share/audiomill/registry``)."""
    explicit = os.environ.get(REGISTRY_ENV, "")
    if explicit:
        return explicit
    data_home = os.environ.get(DATA_HOME_ENV) or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "audiomill", "registry")


class ModelRegistry:
    """Read, register and promote model versions under ``root`` (a directory or ``s3://`` prefix).

    An empty ``root`` means :func:`default_registry_root`.
    """

    def __init__(self, root: str = "") -> None:
        root = root or default_registry_root()
        self.root = root if storage.is_s3(root) else os.path.abspath(os.path.expanduser(root))

    def _uri(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    def names(self) -> list[str]:
        return sorted({v.name for v in self._scan()})

    def versions(self, name: str) -> list[ModelVersion]:
        return sorted((v for v in self._scan(name)), key=lambda v: v.version)

    def _scan(self, name: str | None = None) -> Iterator[ModelVersion]:
        base = self._uri(name) if name else self.root
        if not storage.exists(base):
            return
        for info in storage.list_files(base):
            relative = info.uri[len(self.root):].strip("/").split("/")
            if len(relative) == 3 and relative[2] == META_FILE and relative[1].isdigit():
                yield ModelVersion.from_json(json.loads(storage.read_text(info.uri)))

    def get(self, name: str, version: int) -> ModelVersion:
        uri = self._uri(name, str(version), META_FILE)
        try:
            return ModelVersion.from_json(json.loads(storage.read_text(uri)))
        except FileNotFoundError:
            known = [v.version for v in self.versions(name)]
            raise RegistryError(f"{name}@{version} is not in registry {storage.redact(self.root)} "
                                f"(versions: {known or 'none'})") from None

    def stages(self, name: str) -> dict[str, int]:
        return self._stages_doc(name)["stages"]

    def _stages_doc(self, name: str) -> dict[str, Any]:
        try:
            return json.loads(storage.read_text(self._uri(name, STAGES_FILE)))
        except FileNotFoundError:
            return {"stages": {}, "history": []}

    def lookup(self, ref: str) -> ModelVersion:
        """The version ``name@3`` / ``name@<stage>`` / ``name@latest`` points at now."""
        parsed = parse_ref(ref)
        if parsed is None:
            raise RegistryError(f"{ref!r} is not a model reference like whisper-small@3 or "
                                f"whisper-small@production")
        name, selector = parsed
        if selector.isdigit():
            return self.get(name, int(selector))
        if selector == "latest":
            versions = self.versions(name)
            if not versions:
                raise RegistryError(f"no versions of {name} in registry {storage.redact(self.root)}")
            return versions[-1]
        stages = self.stages(name)
        if selector not in stages:
            raise RegistryError(f"{name} has no stage {selector!r} (stages: {sorted(stages) or 'none'}); "
                                f"promote a version with `audiomill models promote {name}@N {selector}`")
        return self.get(name, stages[selector])

    def register(self, name: str, source_dir: str | Path, *, parent: int | None = None,
                 training_data: str | None = None, round: int | None = None,  # noqa: A002
                 description: str = "", metrics: dict[str, float] | None = None) -> ModelVersion:
        """Copy ``source_dir``'s files in as the next version; meta.json is written last."""
        if not re.fullmatch(_NAME, name):
            raise RegistryError(f"model name {name!r} must match {_NAME} (no '@' or '/')")
        existing = self.versions(name)
        if parent is not None and parent not in {v.version for v in existing}:
            raise RegistryError(f"parent version {name}@{parent} does not exist")
        files = scan_dir(source_dir)
        if not files:
            raise RegistryError(f"{source_dir} holds no files to register")
        version = ModelVersion(name=name, version=(existing[-1].version + 1) if existing else 1,
                               created_unix=round_time(time.time()), files=files,
                               sha256=files_digest(files), parent=parent, training_data=training_data,
                               round=round, description=description, metrics=dict(metrics or {}))
        prefix = self._uri(name, str(version.version))
        for item in files:
            storage.write_file(storage.join(prefix, FILES_DIR, item.path), str(Path(source_dir) / item.path))
        meta_uri = storage.join(prefix, META_FILE)
        if storage.exists(meta_uri):
            raise RegistryError(f"{version.ref} was registered concurrently; register again")
        storage.write_text(meta_uri, json.dumps(version.to_json(), indent=2, sort_keys=True))
        logger.info("registered %s (%d files, sha256 %s)", version.ref, len(files), version.sha256[:12])
        return version

    def promote(self, name: str, version: int, stage: str) -> None:
        """Point ``name@<stage>`` at ``version`` (the version must exist); history keeps the old."""
        if not _STAGE.match(stage) or stage == "latest":
            raise RegistryError(f"stage {stage!r} must be a lowercase word such as production "
                                f"(and not 'latest')")
        self.get(name, version)
        doc = self._stages_doc(name)
        doc["history"].append({"stage": stage, "version": version, "previous": doc["stages"].get(stage),
                               "at_unix": round_time(time.time())})
        doc["stages"][stage] = version
        storage.write_text(self._uri(name, STAGES_FILE), json.dumps(doc, indent=2, sort_keys=True))

    def materialize(self, name: str, version: int, files: tuple[ModelFile, ...], cache_dir: str) -> str:
        """A local directory holding the version's files (S3: downloaded and verified once)."""
        if not storage.is_s3(self.root):
            local = self._uri(name, str(version), FILES_DIR)
            _check_sizes(local, files)
            return local
        registry_id = hashlib.sha256(self.root.encode()).hexdigest()[:12]
        target = Path(os.path.expanduser(cache_dir)) / registry_id / name / str(version)
        target.mkdir(parents=True, exist_ok=True)
        with _locked(target / ".lock"):
            marker = target / _CACHE_MARKER
            if not (marker.is_file() and marker.read_text() == files_digest(files)):
                for item in files:
                    _download(self._uri(name, str(version), FILES_DIR, item.path), target / item.path, item)
                marker.write_text(files_digest(files))
        return str(target)


def round_time(seconds: float) -> float:
    return round(seconds, 3)


def _check_sizes(directory: str, files: tuple[ModelFile, ...]) -> None:
    for item in files:
        path = Path(directory) / item.path
        if not path.is_file() or path.stat().st_size != item.bytes:
            raise RegistryError(f"{path} is missing or has the wrong size (expected {item.bytes} bytes)")


def _download(uri: str, path: Path, item: ModelFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    digest = hashlib.sha256()
    with storage.open_read(uri) as source, open(partial, "wb") as sink:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            sink.write(chunk)
    if digest.hexdigest() != item.sha256:
        partial.unlink()
        raise RegistryError(f"{storage.redact(uri)}: sha256 {digest.hexdigest()[:12]}… does not match "
                            f"the registered {item.sha256[:12]}…")
    os.replace(partial, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock file, so several workers on one machine download a model once."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_model(ref_or_path: str, registry: str = "") -> ResolvedModel:
    """Pin a local directory or a registry reference to an exact, digested model.

    An existing directory wins over the reference syntax. A directory is hashed here (once, on
    the driver); a registry version's digest comes from its meta.json.
    """
    text = ref_or_path.strip()
    path = Path(os.path.expanduser(text))
    if path.is_dir() or parse_ref(text) is None:
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {path} does not exist")
        files = scan_dir(path)
        digest = files_digest(files)
        return ResolvedModel(ref=str(path.resolve()), model_id=f"{path.resolve().name}@sha256:{digest[:12]}",
                             sha256=digest, files=files)
    registry_ = ModelRegistry(registry)
    try:
        found = registry_.lookup(text)
    except RegistryError as exc:
        if registry or os.environ.get(REGISTRY_ENV):
            raise
        raise RegistryError(f"{exc} (the default registry {registry_.root}; set models.registry or "
                            f"{REGISTRY_ENV} to use another)") from exc
    return ResolvedModel(ref=found.ref, model_id=found.ref, sha256=found.sha256, registry=registry_.root,
                         files=found.files)
