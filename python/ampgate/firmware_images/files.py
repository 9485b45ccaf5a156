"""The files of uploaded firmware images: streamed to disk as they arrive, hashed on the way, kept under a random
token.

An upload is written as `<token>.part` in the image directory and renamed to `<token>` once complete and
flushed to disk, so a file under its final name is always whole; `.part` files left by a crash are removed at
start, and so are files no image names any more (`sweep`). Disk writes and SHA-256 run in worker threads, a chunk
group at a time: the trio thread only hands bytes over, so a 1 GiB upload never holds it for more than a copy.

The token is what the public URL carries (`/firmware/files/<token>/<name>`): 32 random bytes, so the URL of an
image cannot be guessed, not even by someone holding the vendor's file (its hash would be guessable).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable

import msgspec
import trio

from ampgate.errors import ValidationError
from ampgate.uploading import PartFile, unlink

log = logging.getLogger(__name__)

# The default cap on one image: firmware of chargers is tens to a few hundred MB (Linux-based DC chargers ship
# whole root file systems); 1 GiB leaves room and still bounds what one admin request can put on the disk.
DEFAULT_MAX_IMAGE_BYTES = 1 << 30
# 32 random bytes = 256 bits (43 URL-safe characters): nothing to guess, and the URL stays far below the 512
# characters a location may have whatever the base URL.
TOKEN_BYTES = 32
# Bytes gathered before one hop to a worker thread writes and hashes them (as log uploads do): the hops cost
# nothing next to the writes, and an upload holds at most this much memory.
FLUSH_BYTES = 256 << 10
PART_SUFFIX = ".part"


def new_token() -> str:
    """A fresh random token for an image's URL (URL-safe, also a safe file name)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


class StoredFile(msgspec.Struct, frozen=True, kw_only=True):
    """A complete upload on disk under its final name."""

    token: str
    path: str
    size: int
    sha256: str  # hex


def too_large(limit: int) -> ValidationError:
    """The refusal of a file over `limit` bytes: 422 `file_too_large` naming `file` (the issue's rule: an
    oversized image is an invalid input like a too-long location, not a transport error)."""
    return ValidationError(
        f"the file is larger than this node accepts for a firmware image ({limit} bytes)",
        field="file",
        code="file_too_large",
    )


class ImageUpload:
    """One image file being received. `write` the bytes, then `commit`; `close` always (it removes a file that
    was not committed, whole or partial)."""

    def __init__(self, files: ImageFiles) -> None:
        self.token = new_token()
        self.max_bytes = files.max_bytes
        self._files = files
        self._part: PartFile | None = None
        self._pending = bytearray()
        self._received = 0
        self._stored: StoredFile | None = None
        self._kept = False

    @property
    def received(self) -> int:
        """File bytes received so far."""
        return self._received

    async def write(self, data: bytes) -> None:
        """Add `data` to the file. Raises ValidationError `file_too_large` (field file) once the file passes
        `max_bytes`; nothing more is written after that."""
        self._received += len(data)
        if self._received > self.max_bytes:
            raise too_large(self.max_bytes)
        self._pending += data
        if len(self._pending) >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._part is None:
            path = self._files.path_of(self.token) + PART_SUFFIX
            self._part = await trio.to_thread.run_sync(PartFile, path)
        data, self._pending = bytes(self._pending), bytearray()
        if data:
            await trio.to_thread.run_sync(self._part.write, data)

    async def commit(self) -> StoredFile:
        """The body is complete: put the file under its final name, durably. Returns where it is, its size and
        SHA-256. The file stays until `close` unless `keep` is called (once its image row has committed)."""
        await self._flush()
        part = self._part
        assert part is not None  # _flush opened it
        final = self._files.path_of(self.token)
        await trio.to_thread.run_sync(part.finish, final)
        self._stored = StoredFile(token=self.token, path=final, size=part.size, sha256=part.hash.hexdigest())
        return self._stored

    def keep(self) -> None:
        """The committed file belongs to an image now: `close` leaves it."""
        assert self._stored is not None, "keep() after commit()"
        self._kept = True

    async def close(self) -> None:
        """End the upload: a partial file, or a committed one nobody kept, is removed. Safe to call twice, and
        under cancellation."""
        with trio.CancelScope(shield=True):
            part, self._part = self._part, None
            if part is not None and self._stored is None:
                await trio.to_thread.run_sync(part.discard)
            if self._stored is not None and not self._kept:
                await trio.to_thread.run_sync(unlink, self._stored.path)
                self._stored = None


class ImageFiles:
    """The image directory (created if missing; `.part` files of an earlier run removed). `max_bytes` caps one
    file."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("the image size limit is at least 1 byte")
        self.directory = os.path.abspath(directory)
        self.max_bytes = max_bytes
        os.makedirs(self.directory, exist_ok=True)
        for entry in os.listdir(self.directory):
            if entry.endswith(PART_SUFFIX):
                unlink(os.path.join(self.directory, entry))
                log.info("removed %s, an image upload interrupted by the last shutdown", entry)

    def path_of(self, token: str) -> str:
        """Where the file of the image with `token` lives."""
        return os.path.join(self.directory, token)

    def begin(self) -> ImageUpload:
        """Start receiving a file under a fresh token."""
        return ImageUpload(self)

    def sweep(self, known: Callable[[str], bool]) -> int:
        """Remove files whose token `known` does not recognise (the node stopped between storing a file and
        recording its image, or an image's delete did not reach its file). Start-up only: it lists the
        directory on the calling thread. Returns how many were removed."""
        removed = 0
        for entry in os.listdir(self.directory):
            if entry.endswith(PART_SUFFIX) or known(entry):
                continue
            unlink(os.path.join(self.directory, entry))
            log.info("removed %s, a firmware file no image refers to", entry)
            removed += 1
        return removed

    async def remove(self, path: str) -> None:
        """Remove a file (off the trio thread); a file already gone is fine. A download in progress keeps
        reading it (POSIX: the open file outlives its name)."""
        await trio.to_thread.run_sync(unlink, path)
