"""`GET /firmware/files/{token}/{file name}`: chargers download the firmware images that were uploaded to the node;
`HEAD` on the same URL answers the same headers without the body.

Authentication is the image's random token in the path (`ampgate.firmware_images.files`): chargers send no
credentials with a firmware download, and the token, unlike the file's hash, cannot be known by someone who has
the vendor's file. A wrong token or a wrong file name is 404, as if nothing were there.

Range requests (RFC 9110 §14) are served for one range: a charger on a flaky link resumes where it broke off
instead of fetching a 500 MB image again. `bytes=first-last`, `bytes=first-` and `bytes=-suffix` get 206 with
`Content-Range`; a range that starts past the end is 416 with `Content-Range: bytes */<size>`; several ranges,
another unit, a malformed header, or an `If-Range` that is not the file's ETag get the whole file (200), which
RFC 9110 allows and every client handles. The ETag is the file's SHA-256, so it never changes for a URL.

HEAD (RFC 9110 §9.3.2) is what a download manager or a charger asks before it fetches: the size
(Content-Length), whether it may resume (Accept-Ranges) and the ETag to pin a resume to. It answers 200 with the
headers a whole-file GET has and no body; a Range header is ignored, since RFC 9110 defines range handling for
GET only (§14.2). It moves no file, so it does not count against the transfer cap, but it shares the
download's rate limit.

Each download counts against the public listener's cap on concurrent transfers (503 with Retry-After past it)
and a per-address rate limit. The file is read in worker threads a chunk at a time (`os.pread` on one open
descriptor), never whole into memory.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Protocol, runtime_checkable

import trio
from litestar import Response, get, head
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType
from litestar.params import HeaderParameter, Parameter
from litestar.response import Stream

from ampgate.errors import AmpgateError, NotFoundError
from ampgate.firmware_images.model import ImageRow
from ampgate.firmware_images.service import FILES_PATH
from ampgate.public.app import PublicOperation, error_responses, rate_limit
from ampgate.public.transfers import FILE_TRANSFER

# Requests per second from one address. Chargers behind one carrier NAT may share an address, and a resuming
# client makes a request per attempt; the token, not this, keeps strangers out, this keeps guessing slow.
DOWNLOAD_RATE_PER_S = 50
# Bytes read per hop to a worker thread: large enough that the hop costs nothing next to the read and the send,
# small enough that hundreds of downloads at once hold little memory (512 × 256 KiB = 128 MiB worst).
CHUNK_BYTES = 256 << 10
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# A byte position of more digits than this is past the end of any file: it is not converted (int() refuses more
# than 4,300 digits, and a header may carry more) but stands for FAR.
_MAX_DIGITS = 18
_FAR = 10**_MAX_DIGITS


def _position(text: str) -> int:
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else _FAR


def _below(a: str, b: str) -> bool:
    """Whether the decimal number `a` is less than `b`, of any length."""
    a, b = a.lstrip("0") or "0", b.lstrip("0") or "0"
    return (len(a), a) < (len(b), b)


_NOT_SERVED = "No image is served at this token and file name (`not_found`, `field`: token)"


class RangeNotSatisfiableError(AmpgateError):
    """The requested range starts past the end of the file (RFC 9110 §15.5.17)."""

    default_code = "range_not_satisfiable"
    status_hint = 416

    def __init__(self, size: int) -> None:
        super().__init__(f"the file has {size} bytes", field="Range")
        self.headers["Content-Range"] = f"bytes */{size}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range (first, last; inclusive) that `header` (a Range header value) asks of a file of `size`
    bytes, or None to send the whole file: no header, a unit other than bytes, several ranges, or a malformed
    one. A last byte past the end is the end; a suffix longer than the file is the whole file. Raises
    RangeNotSatisfiableError when the range starts at or past the end (or asks for a zero-length suffix)."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None:
        return None
    first_text, last_text = m.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = _position(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return max(0, size - suffix), size - 1
    if last_text and _below(last_text, first_text):
        return None  # malformed (RFC 9110: ignored)
    first = _position(first_text)
    if first >= size:
        raise RangeNotSatisfiableError(size)
    last = _position(last_text) if last_text else size - 1
    return first, min(last, size - 1)


@runtime_checkable
class ImageFileSource(Protocol):
    """`ampgate.firmware_images.FirmwareImages`."""

    def by_token(self, token: str, /) -> ImageRow | None: ...


def etag(row: ImageRow) -> str:
    """The strong ETag of an image's file: its SHA-256, quoted."""
    return f'"{row.sha256}"'


class _FileChunks:
    """`length` bytes of the open descriptor `fd` from `first`, a chunk at a time. The descriptor is closed once
    the last chunk is read, or when this is dropped unfinished (the client went away, or the response was never
    sent): close() is synchronous, so dropping needs no event loop."""

    def __init__(self, fd: int, first: int, length: int) -> None:
        self._fd: int | None = fd
        self._offset = first
        self._end = first + length

    def __aiter__(self) -> _FileChunks:
        return self

    async def __anext__(self) -> bytes:
        fd = self._fd
        if fd is None or self._offset >= self._end:
            self.close()
            raise StopAsyncIteration
        try:
            data = await trio.to_thread.run_sync(
                os.pread, fd, min(CHUNK_BYTES, self._end - self._offset), self._offset
            )
        except BaseException:
            self.close()
            raise
        if not data:  # the file shrank under us: stop short rather than loop
            self.close()
            raise StopAsyncIteration
        self._offset += len(data)
        return data

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


def _open(path: str) -> tuple[int, int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def _served(images: ImageFileSource, token: str, name: str) -> ImageRow:
    """The image served at `token`/`name`. Raises NotFoundError for an unknown token, another file name, or an
    image without a file."""
    row = images.by_token(token)
    if row is None or row.file_path is None or name != row.file_name:
        raise NotFoundError("no firmware image is served at this URL", field="token")
    return row


def _headers(row: ImageRow, length: int) -> dict[str, str]:
    """The headers every answer of the route carries (GET whole or ranged, HEAD)."""
    return {"Accept-Ranges": "bytes", "ETag": etag(row), "Content-Length": str(length)}


@get(
    f"{FILES_PATH}/{{token:str}}/{{name:str}}",
    operation_id="download_firmware",
    operation_class=PublicOperation,
    opt={FILE_TRANSFER: True},
    middleware=[rate_limit("firmware", DOWNLOAD_RATE_PER_S)],
    media_type="application/octet-stream",
    summary="Download an uploaded firmware image (random token in the path; Range requests; rate-limited)",
    responses={
        206: ResponseSpec(
            bytes,
            media_type="application/octet-stream",
            generate_examples=False,
            description="The one range asked for (`Content-Range: bytes first-last/size`)",
        ),
        **error_responses(
            {
                404: _NOT_SERVED,
                416: None,
                503: None,
                429: "Too many requests from this address (`RateLimit-*`)",
            }
        ),
    },
)
async def download_firmware(
    images: NamedDependency[ImageFileSource],
    token: Annotated[str, Parameter(description="The image's random token")],
    name: Annotated[str, Parameter(description="The file name the image is served under")],
    range_header: Annotated[
        str | None,
        HeaderParameter(
            name="Range",
            description="One byte range: `bytes=first-last`, `bytes=first-` or `bytes=-suffix` (206); any other "
            "value is ignored (the whole file)",
            schema_extra={
                "one_of": None,
                "type": OpenAPIType.STRING,
                "pattern": r"^bytes=([0-9]+-[0-9]*|-[0-9]+)$",
            },
        ),
    ] = None,
    if_range: Annotated[
        str | None,
        HeaderParameter(
            name="If-Range", description="The ETag the client's partial copy has; another: the whole file"
        ),
    ] = None,
) -> Stream:
    """The image's bytes: 200 whole, or 206 for one range with Content-Range; ETag (its SHA-256) and
    Accept-Ranges on both. 404 `not_found` for an unknown token or another file name, 416
    `range_not_satisfiable`, 503 `too_many_transfers` past the transfer cap."""
    row = _served(images, token, name)
    assert row.file_path is not None
    try:
        fd, size = await trio.to_thread.run_sync(_open, row.file_path)
    except FileNotFoundError:
        raise NotFoundError("no firmware image is served at this URL", field="token") from None
    try:
        wanted = parse_range(range_header, size)
        if wanted is not None and if_range is not None and if_range.strip() != etag(row):
            wanted = None  # the client's partial copy is of another file: send this one whole
    except BaseException:
        os.close(fd)
        raise
    if wanted is None:
        first, length, status = 0, size, 200
        headers = _headers(row, length)
    else:
        first, last = wanted
        length, status = last - first + 1, 206
        headers = _headers(row, length)
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return Stream(
        _FileChunks(fd, first, length),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


@head(
    f"{FILES_PATH}/{{token:str}}/{{name:str}}",
    operation_id="probe_firmware",
    operation_class=PublicOperation,
    middleware=[rate_limit("firmware", DOWNLOAD_RATE_PER_S)],
    summary="The headers of a firmware download without its body (size, Accept-Ranges, ETag; rate-limited)",
    responses=error_responses({404: _NOT_SERVED, 429: "Too many requests from this address (`RateLimit-*`)"}),
)
async def probe_firmware(
    images: NamedDependency[ImageFileSource],
    token: Annotated[str, Parameter(description="The image's random token")],
    name: Annotated[str, Parameter(description="The file name the image is served under")],
) -> Response[None]:
    """200 with the headers of the whole file's GET (Content-Length, Accept-Ranges, ETag, Content-Type) and no
    body; a Range header is ignored (RFC 9110 defines ranges for GET only). 404 `not_found` as GET."""
    row = _served(images, token, name)
    assert row.file_path is not None
    try:
        size = (await trio.to_thread.run_sync(os.stat, row.file_path)).st_size
    except FileNotFoundError:
        raise NotFoundError("no firmware image is served at this URL", field="token") from None
    headers = _headers(row, size)
    headers["Content-Type"] = "application/octet-stream"
    return Response(None, status_code=200, headers=headers)
