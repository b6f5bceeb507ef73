"""What listing must never read: audiomill datasets (a job's own output above all), and manifest
rows that point outside the folder the manifest is allowed to name.

A **dataset dir** is one holding an audiomill ``manifest.json`` (format ``audiomill-dataset/...``),
a ``_parts/`` work dir or a job lock (``_LOCK.json``): the last two mark a dataset being written,
so even a first run whose output sits inside its input never lists itself. Its ``shards/``,
``held/`` and ``_parts/`` count as part of it when given as an input of their own.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath

from audiomill import layout, storage

logger = logging.getLogger(__name__)

DATASET_SUBDIRS = (layout.SHARDS_DIR, layout.HELD_DIR, layout.PARTS_DIR)


class InputOutputOverlapError(ValueError):
    """The output is one of the inputs, or an input directory lies inside the output."""


def normalized(uri: str) -> str:
    """Comparable form of a URI: local paths absolute with symlinks resolved; S3 keys normalized."""
    if storage.is_s3(uri):
        bucket, _, key = uri[5:].partition("/")
        key = posixpath.normpath("/" + key).lstrip("/")
        return f"s3://{bucket}/{key}".rstrip("/")
    return os.path.realpath(storage.local_path(uri) or uri)


def is_inside(uri: str, root: str) -> bool:
    """True when ``uri`` is ``root`` or lies under it (both local, or both in one S3 bucket)."""
    if storage.is_s3(uri) != storage.is_s3(root):
        return False
    target, base = normalized(uri), normalized(root)
    return target == base or target.startswith(base.rstrip("/") + "/")


def _is_dir_input(uri: str) -> bool:
    """A directory (S3: a prefix, i.e. not an existing object)."""
    path = storage.local_path(uri)
    if path is not None:
        return os.path.isdir(path)
    try:
        storage.size(uri)
        return False
    except storage.STORAGE_ERRORS:
        return True


def check_output_not_inside_inputs(inputs: list[str], output: str) -> None:
    """Refuse overlaps a listing cannot make safe; an output inside an input dir is fine.

    - output == an input: refused (the input would become a dataset dir, skipped on every rerun);
    - an input dir inside the output: refused (the job writes and deletes under it);
    - the output inside an input dir: allowed, because listing skips it (see :class:`DatasetSkipper`);
    - a single input file inside the output (e.g. ``OUT/_crawl/manifest.jsonl``): allowed, it is read
      once while listing.
    """
    for uri in inputs:
        shown_in, shown_out = storage.redact(uri), storage.redact(output)
        if normalized(uri) == normalized(output):
            raise InputOutputOverlapError(
                f"--out {shown_out} is also an input: write the dataset to a new directory "
                f"(e.g. {shown_out.rstrip('/')}-clean) or inside the input, never onto it")
        if is_inside(uri, output) and _is_dir_input(uri):
            raise InputOutputOverlapError(
                f"input {shown_in} lies inside --out {shown_out}: the job writes and deletes under "
                "its output; move the input out or write the dataset elsewhere")


def _has_file(uri: str) -> bool:
    try:
        storage.size(uri)  # S3: one HEAD
        return True
    except FileNotFoundError:
        return False


def is_dataset_dir(uri: str) -> bool:
    """True when ``uri`` holds an audiomill dataset (finished or being written).

    A few requests on S3 (HEAD lock, HEAD manifest, HEAD + one-key LIST for ``_parts/``).
    """
    try:
        if _has_file(layout.lock_uri(uri)):
            return True
        manifest_uri = storage.join(uri, layout.MANIFEST_FILE)
        if _has_file(manifest_uri):
            manifest = json.loads(storage.read_text(manifest_uri))
            if isinstance(manifest, dict) and str(manifest.get("format", "")).startswith(
                    layout.DATASET_FORMAT_PREFIX):
                return True
        return storage.exists(storage.join(uri, layout.PARTS_DIR))
    except (*storage.STORAGE_ERRORS, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        logger.debug("not a dataset (unreadable marker) %s: %s", storage.redact(uri), err)
        return False


class DatasetSkipper:
    """Decides, per listed file, whether it belongs to a dataset dir under the input ``root``.

    Each directory between the root and a file is classified once (a few ``exists`` calls, cached),
    so the cost is per directory, not per file. ``skip_dirs`` (e.g. the job's output) are skipped
    whatever they hold.
    """

    def __init__(self, root: str, skip_dirs: list[str] | None = None) -> None:
        self.root = root.rstrip("/")
        self._skip = [normalized(d) for d in skip_dirs or []]
        self._verdicts: dict[str, bool] = {}
        self.skipped: list[str] = []  # dataset dirs found, in listing order

    def root_is_dataset(self) -> bool:
        """The root itself is a dataset, or a dataset's shards/held/_parts dir."""
        parent = posixpath.dirname(self.root)
        return self._check(self.root) or (
            posixpath.basename(self.root) in DATASET_SUBDIRS and bool(parent) and self._check(parent))

    def skips(self, uri: str) -> bool:
        """True when ``uri`` (a file listed under the root) lies in a dataset dir below the root."""
        relative = uri[len(self.root):].strip("/").split("/")[:-1]
        current = self.root
        for name in relative:
            current = f"{current}/{name}"
            if self._check(current):
                return True
        return False

    def _check(self, uri: str) -> bool:
        verdict = self._verdicts.get(uri)
        if verdict is None:
            verdict = normalized(uri) in self._skip or is_dataset_dir(uri)
            self._verdicts[uri] = verdict
            if verdict:
                logger.warning("not listing %s: it holds an audiomill dataset (set "
                               "ingest.include_datasets=true to read it)", storage.redact(uri))
                self.skipped.append(storage.redact(uri))
        return verdict


def manifest_row_escape(path: str, target: str, manifest_uri: str, manifest_root: str | None,
                        absolute_allowed: bool) -> str | None:
    """Why the manifest row naming ``path`` (resolved to ``target``) must not be read, or None.

    Rows must resolve inside ``manifest_root``, by default the manifest's own folder; symlinks and
    ``..`` are resolved first. ``absolute_allowed`` lets absolute paths and URIs point anywhere.
    """
    is_absolute = storage.is_s3(path) or path.startswith(("/", "file://"))
    if is_absolute and absolute_allowed:
        return None
    root = manifest_root or posixpath.dirname(manifest_uri) or "."
    if is_inside(target, root):
        return None
    if manifest_root:
        return f"path resolves outside ingest.manifest_root ({storage.redact(root)})"
    return (f"path resolves outside the manifest's folder ({storage.redact(root)}); set "
            "ingest.manifest_root to a folder holding it, or ingest.manifest_absolute_paths=true")
