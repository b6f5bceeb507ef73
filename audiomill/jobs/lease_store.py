"""Compare-and-swap on one small object, local or S3: the primitive under :mod:`audiomill.jobs.lock`.

Every operation is conditional on a *version* (local: sha256 of the content; S3: the ETag), so a
writer only ever replaces or deletes the exact lease it read:

- local: every change (create, replace, delete) holds an exclusive ``flock`` on the lease's
  directory, so its check and its write are one step for every process on the machine; readers
  take no lock (``os.link`` and ``os.replace`` never show a half-written file). ``create`` links a
  complete temp file to the name (``os.link`` fails if it exists); ``replace`` checks the version
  and renames a complete temp file over the name. Replacing used to rename the file away, check
  it, and link it back when it was not the expected version; in that moment another racer's
  ``create`` could succeed, and two runs both held the lock
  (``test_of_many_racing_runs_exactly_one_wins`` failed 1 run in 6). Where the directory cannot
  be locked (some network filesystems), the same steps run unguarded.
- S3: ``create`` is ``PutObject(IfNoneMatch='*')``, ``replace`` is ``PutObject(IfMatch=etag)``,
  ``delete`` is ``DeleteObject(IfMatch=etag)`` (AWS S3 since 2024, MinIO, moto 5). A store that
  ignores these headers would make the lock advisory; ``create`` reads its object back and fails
  if the body is not the one it wrote, which catches the plain last-writer-wins case.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import Protocol

from botocore.exceptions import ClientError

from audiomill import storage

_LOST_RACE_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409",
                    "NoSuchKey", "404", "NotFound"}


class LeaseStore(Protocol):
    """A single object with conditional writes; versions are opaque strings."""

    def create(self, data: bytes) -> str | None:
        """Write ``data`` if nothing is there; its version, or None when the object exists."""

    def read(self) -> tuple[bytes, str] | None:
        """(content, version), or None when absent."""

    def replace(self, version: str, data: bytes) -> str | None:
        """Write ``data`` if the object is still at ``version``; the new version, or None."""

    def delete(self, version: str) -> None:
        """Delete the object if it is still at ``version``."""


def lease_store(uri: str) -> LeaseStore:
    return S3LeaseStore(uri) if storage.is_s3(uri) else LocalLeaseStore(storage.local_path(uri) or uri)


def _version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalLeaseStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self.parent = os.path.dirname(os.path.abspath(path))

    def _read_file(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """An exclusive flock on the lease's directory while a change checks and writes."""
        os.makedirs(self.parent, exist_ok=True)
        fd = os.open(self.parent, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):  # a filesystem without flock: unguarded
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _temp_file(self, data: bytes) -> str:
        tmp = os.path.join(self.parent, f".{os.path.basename(self.path)}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp

    def create(self, data: bytes) -> str | None:
        with self._guard():
            tmp = self._temp_file(data)
            try:
                os.link(tmp, self.path)  # create-if-absent, and readers never see it half-written
                return _version(data)
            except FileExistsError:
                return None
            finally:
                os.remove(tmp)

    def read(self) -> tuple[bytes, str] | None:
        data = self._read_file(self.path)
        return None if data is None else (data, _version(data))

    def _is_at(self, version: str) -> bool:
        current = self.read()
        return current is not None and current[1] == version

    def replace(self, version: str, data: bytes) -> str | None:
        with self._guard():
            if not self._is_at(version):
                return None
            tmp = self._temp_file(data)
            try:
                os.replace(tmp, self.path)  # atomic: readers see the old lease or the new one
            except OSError:
                os.remove(tmp)
                raise
            return _version(data)

    def delete(self, version: str) -> None:
        with self._guard():
            if self._is_at(version):
                os.remove(self.path)


class S3LeaseStore:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.bucket, _, self.key = uri[5:].partition("/")

    def _put(self, data: bytes, **condition: str) -> str | None:
        try:
            response = storage.s3_client().put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)
        except ClientError as err:
            if _code(err) in _LOST_RACE_CODES:
                return None
            raise
        return str(response["ETag"])

    def create(self, data: bytes) -> str | None:
        version = self._put(data, IfNoneMatch="*")
        if version is None:
            return None
        current = self.read()  # a store ignoring If-None-Match: the last writer's body is there
        return version if current is not None and current[0] == data else None

    def read(self) -> tuple[bytes, str] | None:
        try:
            response = storage.s3_client().get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as err:
            if _code(err) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        return bytes(response["Body"].read()), str(response["ETag"])

    def replace(self, version: str, data: bytes) -> str | None:
        return self._put(data, IfMatch=version)

    def delete(self, version: str) -> None:
        try:
            storage.s3_client().delete_object(Bucket=self.bucket, Key=self.key, IfMatch=version)
        except ClientError as err:
            if _code(err) not in _LOST_RACE_CODES:
                raise


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
