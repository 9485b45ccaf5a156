"""The receiving end of log uploads: one-time tokens, and files streamed to disk with their SHA-256.

A request the node receives the file of gets a random token; the charger is told the URL
`<public base URL>/public/v1/uploads/<token>` and only the token's SHA-256 is stored. A token admits one upload
at a time, and is used up by the first one that completes; an upload that breaks off (the connection drops, the
body is too large) leaves it usable, so the charger's retry (GetLog `retries`) can succeed. A token is void once
the charger refused the request or the call failed, and expires UPLOAD_WINDOW_S after the request.

The file is written as `<id>.part` in the upload directory and renamed once complete and flushed to disk, so a
file under its final name is always whole; `.part` files left by a crash are removed at start. Disk writes and
hashing run in worker threads, a chunk group at a time: the trio thread only hands bytes over.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from datetime import datetime, timedelta
from typing import Protocol

import trio

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.errors import ConflictError, NotFoundError, PayloadTooLargeError
from ampgate.events import LogUploaded
from ampgate.logs.repository import UPLOAD_OPEN, UPLOAD_RECEIVED, FileInfo, LogRow
from ampgate.store.hashing import token_digest
from ampgate.uploading import PartFile

log = logging.getLogger(__name__)

# Where uploads are received on the public surface; the token follows (and, for chargers that append their
# file name to the location they were given, anything after it).
UPLOAD_PATH = "/public/v1/uploads"
# 32 random bytes = 256 bits (43 URL-safe characters): nothing to guess; the URL stays far below GetLog's
# 512-character remoteLocation whatever the base URL.
TOKEN_BYTES = 32
# How long after the request its upload URL works. A charger uploads right after accepting, or within its
# `retries` × `retryInterval`; a day covers any sensible retry plan and still bounds what a leaked URL is worth.
UPLOAD_WINDOW_S = 24 * 3600
# Default cap on one uploaded file: diagnostics archives are a few MB, some chargers' full logs tens of MB.
DEFAULT_MAX_UPLOAD_BYTES = 100 << 20
# Bytes gathered before one hop to a worker thread writes and hashes them: big enough that the thread hops
# cost nothing next to the writes, small enough that an upload holds little memory (512 at once: 128 MiB worst).
FLUSH_BYTES = 256 << 10
# A stored file name: the charger's name made safe, at most this long.
MAX_NAME = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
PART_SUFFIX = ".part"


def new_upload_token() -> str:
    """A fresh one-time upload token (URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def upload_path(token: str) -> str:
    """The public path of the upload URL for `token`."""
    return f"{UPLOAD_PATH}/{token}"


def expiry(at: datetime) -> datetime:
    """When an upload URL made at `at` stops working."""
    return at + timedelta(seconds=UPLOAD_WINDOW_S)


def safe_name(name: str | None) -> str | None:
    """`name` reduced to a plain file name (no directories, only letters, digits, '.', '_', '-'), at most
    MAX_NAME characters; None when nothing is left."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(".")[:MAX_NAME]
    return cleaned or None


class UploadRecords(Protocol):
    """`ampgate.logs.LogRepository`."""

    def by_token_hash(self, token_hash: str, /) -> LogRow | None: ...
    async def record_file(self, log_id: int, info: FileInfo, /) -> LogRow: ...


class UploadSink:
    """One upload in progress, for one request. Write the body's bytes, then `commit`; `close` always (it
    removes an uncommitted file and frees the token for another attempt)."""

    def __init__(self, receiver: UploadReceiver, row: LogRow) -> None:
        self._receiver = receiver
        self.row = row
        self.max_bytes = receiver.max_bytes
        self._part: PartFile | None = None
        self._pending = bytearray()
        self._received = 0
        self._done = False

    @property
    def received(self) -> int:
        """File bytes received so far."""
        return self._received

    async def write(self, data: bytes) -> None:
        """Add `data` to the file. Raises PayloadTooLargeError once the file passes `max_bytes`."""
        self._received += len(data)
        if self._received > self.max_bytes:
            raise PayloadTooLargeError(
                f"the file is larger than this node accepts ({self.max_bytes} bytes)", code="upload_too_large"
            )
        self._pending += data
        if len(self._pending) >= FLUSH_BYTES:
            await self._flush()

    async def restart(self) -> None:
        """Forget what was written: the file starts again (a multipart body whose file part came after
        another part)."""
        self._pending.clear()
        self._received = 0
        if self._part is not None:
            await trio.to_thread.run_sync(self._part.restart)

    async def _flush(self) -> None:
        if self._part is None:
            self._part = await trio.to_thread.run_sync(PartFile, self._receiver.part_path(self.row.id))
        data, self._pending = bytes(self._pending), bytearray()
        if data:
            await trio.to_thread.run_sync(self._part.write, data)

    async def commit(self, name: str | None) -> LogRow:
        """The body is complete: put the file under its final name, durably, and record it (name, size,
        SHA-256). Returns the updated request. Raises ConflictError `upload_used` if the request stopped taking
        an upload meanwhile (the file is then removed)."""
        await self._flush()
        part = self._part
        assert part is not None
        final = self._receiver.final_path(self.row)
        await trio.to_thread.run_sync(part.finish, final)
        r = self._receiver
        info = FileInfo(
            path=final,
            name=safe_name(name) or safe_name(self.row.charger_filename),
            size=part.size,
            sha256=part.hash.hexdigest(),
            at=r.clock.now(),
        )
        try:
            row = await r.records.record_file(self.row.id, info)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_unlink, final)
            raise
        self._done = True
        r.bus.publish(
            LogUploaded(
                at=info.at,
                charger_id=row.charger_id,
                log_id=row.id,
                size=info.size,
                sha256=info.sha256,
                file_name=info.name,
            )
        )
        return row

    async def close(self) -> None:
        """End the upload: an uncommitted file is removed, and the token admits another attempt unless it was
        used. Safe to call twice, and under cancellation."""
        with trio.CancelScope(shield=True):
            part, self._part = self._part, None
            if part is not None and not self._done:
                await trio.to_thread.run_sync(part.discard)
            self._receiver.release(self.row.id)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class UploadReceiver:
    """Admits uploads by token and stores their files in `directory` (created if missing; `.part` files left
    by an earlier run are removed). `max_bytes` caps one file."""

    def __init__(
        self, records: UploadRecords, bus: Publisher, clock: Clock, directory: str, max_bytes: int
    ) -> None:
        if max_bytes < 1:
            raise ValueError("the upload limit is at least 1 byte")
        self.records = records
        self.bus = bus
        self.clock = clock
        self.directory = os.path.abspath(directory)
        self.max_bytes = max_bytes
        self._active: set[int] = set()
        os.makedirs(self.directory, exist_ok=True)
        for entry in os.listdir(self.directory):
            if entry.endswith(PART_SUFFIX):
                _unlink(os.path.join(self.directory, entry))
                log.info("removed %s, an upload interrupted by the last shutdown", entry)

    def part_path(self, log_id: int) -> str:
        return os.path.join(self.directory, f"{log_id}{PART_SUFFIX}")

    def final_path(self, row: LogRow) -> str:
        charger = safe_name(row.charger_id) or "charger"
        return os.path.join(self.directory, f"{row.id}-{charger}")

    def begin(self, token: str) -> UploadSink:
        """Start an upload with `token`. Raises NotFoundError `upload_not_found` (no such token, or void) or
        `upload_expired`, ConflictError `upload_used` (its file was received) or `upload_in_progress`."""
        row = self.records.by_token_hash(token_digest(token))
        if row is None or row.upload_state not in (UPLOAD_OPEN, UPLOAD_RECEIVED):
            raise NotFoundError("no upload is expected at this URL", field="token", code="upload_not_found")
        if row.upload_state == UPLOAD_RECEIVED:
            raise ConflictError("this upload URL was already used", field="token", code="upload_used")
        if row.upload_expires_at is not None and self.clock.now() >= row.upload_expires_at:
            raise NotFoundError("this upload URL has expired", field="token", code="upload_expired")
        if row.id in self._active:
            raise ConflictError(
                "an upload to this URL is in progress", field="token", code="upload_in_progress"
            )
        self._active.add(row.id)
        return UploadSink(self, row)

    def release(self, log_id: int) -> None:
        self._active.discard(log_id)
