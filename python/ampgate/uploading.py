"""What every upload the node takes shares (log files from chargers, firmware images from admins): the body read
chunk by chunk as it arrives (`stream_body`), and the file it goes into, hashed as it is written and renamed into
place only when whole (`PartFile`). Nothing here knows what is uploaded or where it is kept."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

from litestar import Request
from litestar.exceptions import InternalServerException

from ampgate.errors import AmpgateError, PayloadTooLargeError

# How much of a refused body is still read and discarded before the answer: many HTTP clients (chargers' among
# them) read the answer only after sending everything, and would see a reset instead of the refusal.
DRAIN_BYTES = 1 << 20


async def stream_body(
    request: Request[Any, Any, Any],
    limit: int,
    take: Callable[[bytes], Awaitable[None]],
    *,
    too_large: Callable[[int], AmpgateError],
    refusals: type[AmpgateError] = PayloadTooLargeError,
) -> None:
    """Hand the body to `take` chunk by chunk. Past `limit` bytes (`too_large(limit)`), or when `take` raises one
    of `refusals`, the rest is read and dropped, up to DRAIN_BYTES, and the refusal raised; any other error of
    `take` is raised at once. A client that goes away mid-body is 400 `upload_interrupted` (an interrupted
    upload, not a server error)."""
    total = 0
    refused: AmpgateError | None = None
    drained = 0
    try:
        async with aclosing(request.stream()) as chunks:
            async for chunk in chunks:
                if refused is not None:
                    drained += len(chunk)
                    if drained > DRAIN_BYTES:
                        break
                    continue
                total += len(chunk)
                try:
                    if total > limit:
                        raise too_large(limit)
                    if chunk:
                        await take(chunk)
                except refusals as e:
                    refused = e
    except InternalServerException:
        raise AmpgateError("the upload was interrupted", code="upload_interrupted") from None
    if refused is not None:
        raise refused


class PartFile:
    """A file being written under a temporary name with its running SHA-256; its methods block, so they run in a
    worker thread, one at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 (closed by finish / discard)
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def restart(self) -> None:
        """Start the file over (a charger sending the upload again)."""
        self.file.seek(0)
        self.file.truncate()
        self.hash = hashlib.sha256()
        self.size = 0

    def finish(self, final: str) -> None:
        """Flush it to disk and give it its final name."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.path, final)

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        unlink(self.path)


def unlink(path: str) -> None:
    """Remove `path`; one already gone is no error."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
