"""One writer per output: a lease object ``OUT/_LOCK.json`` that a job holds while it writes.

Why a lease and not an OS lock: the output may be an S3 prefix or a shared disk seen by several
hosts. The lease is created atomically (local: ``os.link`` of a complete temp file, which fails if
the name exists; S3: ``PutObject`` with ``IfNoneMatch='*'``), names its holder (host, pid, start
time, command) and carries an expiry. A heartbeat thread renews it every ``ttl_s / 4`` (S3: a
conditional put ``IfMatch=<our ETag>``, so a renewal never overwrites someone else's lease). A
crashed run stops renewing, and its lease is taken over once expired, or at once when it was held
by a process on this host that no longer exists. Takeover is atomic too (S3: ``IfMatch`` on the
stale ETag; local: rename the stale file away, then create), so of two runs racing for a stale
lease exactly one wins.

Clocks: expiry compares wall-clock times written by different hosts, so ``ttl_s`` must exceed
their skew (the default, 120 s, does for NTP-synced machines).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import psutil

from audiomill import layout, storage
from audiomill.jobs.lease_store import LeaseStore, lease_store
from audiomill.ingest_safety import normalized

logger = logging.getLogger(__name__)

DEFAULT_TTL_S = 120.0


class OutputLockedError(RuntimeError):
    """Another live run holds the output's lease; the message names it and says what to do."""

    def __init__(self, output: str, holder: LeaseHolder, lock_uri: str) -> None:
        self.holder = holder
        now = time.time()
        super().__init__(
            f"{storage.redact(output)} is being written by another run: pid {holder.pid} on "
            f"{holder.host}, started {_iso(holder.started_at)} ({holder.command}); its lease was "
            f"renewed {now - holder.renewed_at:.0f} s ago and expires in {holder.expires_at - now:.0f} s. "
            f"Wait for it to finish; if that run is dead, its lock frees itself when the lease "
            f"expires (or delete {storage.redact(lock_uri)}).")


class LockLostError(RuntimeError):
    """This run's lease was taken over (it stalled past its expiry): stop writing."""


@dataclass(frozen=True)
class LeaseHolder:
    """What the lease object holds (times are Unix seconds)."""

    host: str
    pid: int
    started_at: float
    command: str
    token: str  # unique per acquisition: tells our lease from a later one of the same process
    renewed_at: float
    expires_at: float

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseHolder | None:
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError):
            return None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _command() -> str:
    return " ".join(storage.redact(a) for a in [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]])[:300]


def holder_is_dead(holder: LeaseHolder, now: float) -> bool:
    """Expired, or held by a process of this host that no longer exists (or is a newer one)."""
    if now >= holder.expires_at:
        return True
    if holder.host != socket.gethostname():
        return False
    try:
        return psutil.Process(holder.pid).create_time() > holder.started_at + 1.0
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


_held: dict[str, OutputLock] = {}  # normalized lock URI -> the lock this process holds on it
_held_guard = threading.Lock()


@contextlib.contextmanager
def output_lock(output: str, command: str | None = None, ttl_s: float = DEFAULT_TTL_S
                ) -> Iterator[OutputLock]:
    """Hold ``output``'s lease for the block; nested use in one process (crawl -> clean) reuses it."""
    with _held_guard:
        held = _held.get(normalized(layout.lock_uri(output)))
    if held is not None:
        yield held
        return
    with OutputLock(output, command, ttl_s) as lock:
        yield lock


class OutputLock:
    """The lease on one output; a context manager (not re-entrant: use :func:`output_lock`).

    ``check()`` between parts raises :class:`LockLostError` if the heartbeat lost the lease.
    """

    def __init__(self, output: str, command: str | None = None, ttl_s: float = DEFAULT_TTL_S,
                 heartbeat_s: float | None = None) -> None:
        self.output = output
        self.uri = layout.lock_uri(output)
        self.command = command if command is not None else _command()
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else ttl_s / 4
        self.store: LeaseStore = lease_store(self.uri)
        self.holder: LeaseHolder | None = None
        self.lost = False
        self._version: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lease or raise :class:`OutputLockedError`; takes over a dead holder's lease."""
        if self.holder is not None:
            raise RuntimeError(f"{storage.redact(self.uri)} is already held by this OutputLock")
        self._take()
        with _held_guard:
            _held[normalized(self.uri)] = self
        self.lost = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="audiomill-lock-heartbeat", daemon=True)
        self._thread.start()

    def _take(self) -> None:
        for _ in range(3):  # create, or take over a dead lease; a lost race means someone lives
            now = time.time()
            mine = self._new_holder(now, started_at=now)
            version = self.store.create(mine.to_json())
            if version is not None:
                self.holder, self._version = mine, version
                return
            current = self.store.read()
            if current is None:
                continue  # released between our create and read: try again
            data, stale_version = current
            theirs = LeaseHolder.from_json(data)
            if theirs is not None and not holder_is_dead(theirs, now):
                raise OutputLockedError(self.output, theirs, self.uri)
            logger.warning("taking over the stale lock %s (%s)", storage.redact(self.uri),
                           "unreadable" if theirs is None else f"pid {theirs.pid} on {theirs.host}")
            version = self.store.replace(stale_version, mine.to_json())
            if version is not None:
                self.holder, self._version = mine, version
                return
        current = self.store.read()
        theirs = LeaseHolder.from_json(current[0]) if current else None
        if theirs is None:
            raise OSError(f"could not take the lock {storage.redact(self.uri)}: it keeps changing")
        raise OutputLockedError(self.output, theirs, self.uri)

    def _new_holder(self, now: float, started_at: float) -> LeaseHolder:
        token = self.holder.token if self.holder else uuid.uuid4().hex
        return LeaseHolder(host=socket.gethostname(), pid=os.getpid(), started_at=started_at,
                           command=self.command, token=token, renewed_at=now, expires_at=now + self.ttl_s)

    def renew(self) -> None:
        """Push the expiry ``ttl_s`` ahead; :class:`LockLostError` if the lease is no longer ours."""
        if self.holder is None or self._version is None:
            raise LockLostError(f"{storage.redact(self.uri)} is not held")
        renewed = self._new_holder(time.time(), started_at=self.holder.started_at)
        version = self.store.replace(self._version, renewed.to_json())
        if version is None:
            self.lost = True
            raise LockLostError(f"lost the lock {storage.redact(self.uri)}: another run took it over "
                                "(this one stalled past its lease); stop writing")
        self.holder, self._version = renewed, version

    def check(self) -> None:
        """Raise :class:`LockLostError` if the heartbeat found the lease taken over."""
        if self.lost:
            raise LockLostError(f"lost the lock {storage.redact(self.uri)} to another run; stop writing")

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours."""
        with _held_guard:
            if _held.get(normalized(self.uri)) is self:
                del _held[normalized(self.uri)]
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._version is not None and not self.lost:
            try:
                self.store.delete(self._version)
            except storage.STORAGE_ERRORS as err:  # it expires on its own
                logger.warning("could not delete the lock %s: %s", storage.redact(self.uri), err)
        self.holder, self._version = None, None

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.renew()
            except LockLostError as err:
                logger.error("%s", err)
                return
            except storage.STORAGE_ERRORS as err:  # retried on the next beat, before expiry
                logger.warning("could not renew the lock %s: %s", storage.redact(self.uri), err)


def read_holder(output: str) -> LeaseHolder | None:
    """Who holds ``output``'s lease now (None when unlocked or unreadable), e.g. for ``inspect``."""
    current = lease_store(layout.lock_uri(output)).read()
    return LeaseHolder.from_json(current[0]) if current else None

