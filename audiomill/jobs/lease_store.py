"""Compare-and-swap on one small object, local or S3: the primitive under :mod:`audiomill.jobs.lock`.

Every operation is conditional on a *version* (local: sha256 of the content; S3: the ETag), so a
writer only ever replaces or deletes the exact lease it read:

- local: ``create`` links a complete temp file to the name (``os.link`` fails if it exists);
  ``replace`` renames the current file away (only one renamer can win), checks it was the version
  expected (else puts it back), then creates the new one. Atomic on POSIX local disks and NFSv3+.
- S3: ``create`` is ``PutObject(IfNoneMatch='*')``, ``replace`` is ``PutObject(IfMatch=etag)``,
  ``delete`` is ``DeleteObject(IfMatch=etag)`` (AWS S3 since 2024, MinIO, moto 5). A store that
  ignores these headers would make the lock advisory; ``create`` reads its object back and fails
  if the body is not the one it wrote, which catches the plain last-writer-wins case.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
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

    def _read_file(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def create(self, data: bytes) -> str | None:
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(self.path)}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, self.path)  # atomic create-if-absent, and readers never see it half-written
            return _version(data)
        except FileExistsError:
            return None
        finally:
            os.remove(tmp)

    def read(self) -> tuple[bytes, str] | None:
        data = self._read_file(self.path)
        return None if data is None else (data, _version(data))

    def _take_away(self, version: str) -> str | None:
        """Rename the object away if it is at ``version``: the moved path, else None."""
        moved = f"{self.path}.{uuid.uuid4().hex}.old"
        try:
            os.rename(self.path, moved)
        except FileNotFoundError:
            return None
        data = self._read_file(moved)
        if data is not None and _version(data) == version:
            return moved
        with contextlib.suppress(FileExistsError):  # not the one we meant: put it back
            os.link(moved, self.path)
        os.remove(moved)
        return None

    def replace(self, version: str, data: bytes) -> str | None:
        current = self.read()
        if current is None or current[1] != version:
            return None
        moved = self._take_away(version)
        if moved is None:
            return None
        os.remove(moved)
        return self.create(data)

    def delete(self, version: str) -> None:
        moved = self._take_away(version)
        if moved is not None:
            os.remove(moved)


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
