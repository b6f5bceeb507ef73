"""One interface over local paths and ``s3://bucket/key`` URIs.

Callers use the module-level functions; they dispatch on the URI scheme to a small backend, so
stages never branch on where data lives. Listings come back in full-URI lexicographic order on both
backends (S3's own order), so part grouping and keys are deterministic. Writes are atomic: a reader
sees the old content or the new, never a partial file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError  # cheap (~10 ms); boto3 itself is imported lazily

from audiomill.redaction import mask_secrets, redact, redact_error  # noqa: F401 - part of this interface

logger = logging.getLogger(__name__)

_MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


@dataclass(frozen=True)
class FileInfo:
    """A listed file: its URI (or local path) and size in bytes."""

    uri: str
    size: int


STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, BotoCoreError, ClientError)
"""Errors a storage call raises for a bad or unreachable URI (local or S3)."""


def is_s3(uri: str) -> bool:
    return uri[:5].lower() == "s3://"


def join(base: str, *parts: str) -> str:
    """Join path parts; parts are always relative (a leading "/" does not reset the base)."""
    for part in parts:
        base = base.rstrip("/") + "/" + part.lstrip("/") if base else part
    return base


def local_path(uri: str) -> str | None:
    """Filesystem path of a local URI (plain path or ``file://``); None for S3."""
    return None if is_s3(uri) else _local(uri)


def absolute(uri: str) -> str:
    """S3 unchanged; a local path made absolute (the same file from any working directory)."""
    path = local_path(uri)
    return uri if path is None else os.path.abspath(path)


def _local(uri: str) -> str:
    return uri[7:] if uri.startswith("file://") else uri


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI has no bucket: {redact(uri)}")
    return bucket, key


def _missing(uri: str) -> FileNotFoundError:
    return FileNotFoundError(f"no such file or object: {redact(uri)}")


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class LocalBackend:
    """Local filesystem; writes go to a hidden temp file in the target dir, then os.replace."""

    def list_files(self, uri: str, recursive: bool) -> Iterator[FileInfo]:
        path = _local(uri)
        if os.path.isfile(path):
            return iter([FileInfo(path, os.path.getsize(path))])
        if not os.path.isdir(path):
            raise _missing(uri)
        return self._walk(path, recursive)

    def _walk(self, dirpath: str, recursive: bool) -> Iterator[FileInfo]:
        """Depth-first, sorted so the output is in full-path order: a dir sorts as "name/"."""
        try:
            with os.scandir(dirpath) as scan:
                entries = list(scan)
        except OSError as err:
            logger.warning("skipping unreadable directory %s: %s", dirpath, err)
            return
        keyed: list[tuple[str, str, int]] = []  # (sort key, path, size or -1 for a directory)
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    keyed.append((entry.name + "/", entry.path, -1))
                elif entry.is_file():
                    keyed.append((entry.name, entry.path, entry.stat().st_size))
                elif entry.is_symlink() and not os.path.exists(entry.path):
                    logger.warning("skipping broken symlink %s", entry.path)
                else:
                    logger.debug("skipping %s (symlinked dir or special file)", entry.path)
            except OSError as err:
                logger.warning("skipping unreadable entry %s: %s", entry.path, err)
        for _, path, size in sorted(keyed):
            if size >= 0:
                yield FileInfo(path, size)
            elif recursive:
                yield from self._walk(path, recursive)

    def exists(self, uri: str) -> bool:
        return os.path.exists(_local(uri))

    def size(self, uri: str) -> int:
        try:
            return os.path.getsize(_local(uri))
        except FileNotFoundError:
            raise _missing(uri) from None

    def read_bytes(self, uri: str, offset: int, length: int | None) -> bytes:
        with self.open_read(uri) as handle:
            handle.seek(offset)
            return handle.read(-1 if length is None else length)

    def open_read(self, uri: str) -> BinaryIO:
        try:
            return open(_local(uri), "rb")
        except FileNotFoundError:
            raise _missing(uri) from None

    def _write_atomic(self, uri: str, fill: Any) -> None:
        path = _local(uri)
        parent, name = os.path.split(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{name}.{uuid.uuid4().hex}.tmp")
        # os.open with 0o666 lets the umask apply, unlike mkstemp's fixed 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise

    def write_bytes(self, uri: str, data: bytes) -> None:
        self._write_atomic(uri, lambda handle: handle.write(data))

    def write_file(self, uri: str, source: str) -> None:
        with open(source, "rb") as src:
            self._write_atomic(uri, lambda handle: shutil.copyfileobj(src, handle, 1 << 20))

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(_local(uri))

    def delete_prefix(self, uri: str) -> None:
        path = _local(uri)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            self.delete(uri)


class _BodyReader(io.RawIOBase):
    """Raw file adapter over a botocore StreamingBody so io.BufferedReader can wrap it."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Backend:
    """S3 via boto3; listings stream page by page, and "dir/" marker keys are skipped."""

    @contextlib.contextmanager
    def _errors(self, uri: str) -> Iterator[None]:
        try:
            yield
        except ClientError as err:
            if _error_code(err) in _MISSING_CODES:
                raise _missing(uri) from None
            raise

    def list_files(self, uri: str, recursive: bool) -> Iterator[FileInfo]:
        bucket, key = _split_s3(uri)
        if key and not key.endswith("/"):
            with contextlib.suppress(FileNotFoundError):
                return iter([FileInfo(f"s3://{bucket}/{key}", self.size(uri))])
        prefix = key.rstrip("/") + "/" if key else ""
        return self._list(uri, bucket, prefix, recursive)

    def _list(self, uri: str, bucket: str, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        kwargs = {"Bucket": bucket, "Prefix": prefix} | ({} if recursive else {"Delimiter": "/"})
        with self._errors(uri):
            for page in s3_client().get_paginator("list_objects_v2").paginate(**kwargs):
                for obj in page.get("Contents", []):
                    if not obj["Key"].endswith("/"):
                        yield FileInfo(f"s3://{bucket}/{obj['Key']}", obj["Size"])

    def exists(self, uri: str) -> bool:
        """An object, or a "directory" (any key under ``uri/``), like a local dir; or a bucket."""
        bucket, key = _split_s3(uri)
        with contextlib.suppress(FileNotFoundError), self._errors(uri):
            if not key.strip("/"):
                s3_client().head_bucket(Bucket=bucket)
                return True
            if not key.endswith("/"):
                with contextlib.suppress(FileNotFoundError):
                    return self.size(uri) >= 0
            page = s3_client().list_objects_v2(
                Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
            return int(page.get("KeyCount", 0)) > 0
        return False

    def size(self, uri: str) -> int:
        bucket, key = _split_s3(uri)
        with self._errors(uri):
            return int(s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"])

    def read_bytes(self, uri: str, offset: int, length: int | None) -> bytes:
        if length == 0:
            self.size(uri)  # still raise FileNotFoundError for a missing object
            return b""
        bucket, key = _split_s3(uri)
        kwargs = {"Bucket": bucket, "Key": key}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            kwargs["Range"] = f"bytes={offset}-{end}"
        with self._errors(uri):
            try:
                return bytes(s3_client().get_object(**kwargs)["Body"].read())
            except ClientError as err:  # a range starting past the end reads as empty, like a file
                if _error_code(err) == "InvalidRange":
                    return b""
                raise

    def open_read(self, uri: str) -> BinaryIO:
        bucket, key = _split_s3(uri)
        with self._errors(uri):
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        return io.BufferedReader(_BodyReader(body), buffer_size=256 * 1024)

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = _split_s3(uri)
        with self._errors(uri):
            s3_client().put_object(Bucket=bucket, Key=key, Body=data)

    def write_file(self, uri: str, source: str) -> None:
        bucket, key = _split_s3(uri)
        with self._errors(uri):  # a missing source raises FileNotFoundError naming it
            s3_client().upload_file(source, bucket, key)

    def delete(self, uri: str) -> None:
        bucket, key = _split_s3(uri)
        s3_client().delete_object(Bucket=bucket, Key=key)

    def delete_prefix(self, uri: str) -> None:
        """Delete the object at ``uri`` and every key under ``uri/`` (refuses a bucket root)."""
        bucket, key = _split_s3(uri)
        if not key.strip("/"):
            raise ValueError(f"refusing to delete a whole bucket: {redact(uri)}")
        self.delete(uri)
        paginator = s3_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/"):
            objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if not objects:
                continue
            result = s3_client().delete_objects(
                Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            if result.get("Errors"):  # delete_objects reports per-key failures, it doesn't raise
                first = result["Errors"][0]
                raise OSError(f"failed to delete {len(result['Errors'])} objects under "
                              f"{redact(uri)}, e.g. {first.get('Key')}: {first.get('Code')}")


_LOCAL, _S3 = LocalBackend(), S3Backend()
_client_lock = threading.Lock()
_client: tuple[int, Any] | None = None  # (pid, client): a forked child builds its own


def s3_client() -> Any:
    """The process-wide boto3 S3 client, created on first use from env and boto3 credentials."""
    global _client
    cached = _client
    if cached is not None and cached[0] == os.getpid():
        return cached[1]
    with _client_lock:
        if _client is None or _client[0] != os.getpid():
            _client = (os.getpid(), _make_client())
        return _client[1]


def _make_client() -> Any:
    import boto3
    from botocore.config import Config

    raw_attempts = os.environ.get("AUDIOMILL_S3_MAX_ATTEMPTS", "8")
    try:
        max_attempts = int(raw_attempts)
    except ValueError:
        raise ValueError(
            f"AUDIOMILL_S3_MAX_ATTEMPTS must be an integer, got {raw_attempts!r}") from None
    endpoint = os.environ.get("AUDIOMILL_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    # total_max_attempts counts the first try, like AWS_MAX_ATTEMPTS; botocore's "max_attempts"
    # key would count retries only (8 -> 9 tries).
    read_timeout = float(os.environ.get("AUDIOMILL_S3_READ_TIMEOUT_S", "60"))
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                    connect_timeout=10, read_timeout=read_timeout, max_pool_connections=32)
    return boto3.session.Session().client("s3", endpoint_url=endpoint or None, config=config)


def reset_s3_client() -> None:
    """Drop the cached client so the next call rereads env (tests switch endpoints)."""
    global _client
    with _client_lock:
        _client = None


def _backend(uri: str) -> LocalBackend | S3Backend:
    return _S3 if is_s3(uri) else _LOCAL


def list_files(uri: str, recursive: bool = True) -> Iterator[FileInfo]:
    """Files under ``uri`` in full-URI order; a file URI yields itself. Missing local paths raise
    at call time; an S3 prefix with no objects is simply empty (S3 has no directories)."""
    return _backend(uri).list_files(uri, recursive)


def exists(uri: str) -> bool:
    """True for an existing file or directory; on S3 a directory is a prefix with keys under it."""
    return _backend(uri).exists(uri)


def size(uri: str) -> int:
    """Size in bytes."""
    return _backend(uri).size(uri)


def read_bytes(uri: str, offset: int = 0, length: int | None = None) -> bytes:
    """Bytes ``[offset, offset + length)``; fewer at end of file, empty past it."""
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"offset and length must be >= 0, got {offset=} {length=}")
    return _backend(uri).read_bytes(uri, offset, length)


def open_read(uri: str) -> BinaryIO:
    """A streaming, non-seekable-on-S3 binary reader; close it (use ``with``)."""
    return _backend(uri).open_read(uri)


def write_bytes(uri: str, data: bytes) -> None:
    _backend(uri).write_bytes(uri, data)


def write_file(uri: str, local_path: str) -> None:
    """Atomically store a local file at ``uri`` (S3: multipart for large files)."""
    _backend(uri).write_file(uri, local_path)


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def delete(uri: str) -> None:
    """Delete one file or object; a missing one is fine."""
    _backend(uri).delete(uri)


def delete_prefix(uri: str) -> None:
    """Delete ``uri`` and everything under it as a directory; missing is fine."""
    _backend(uri).delete_prefix(uri)
