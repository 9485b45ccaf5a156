"""`PUT` / `POST /public/v1/uploads/{token}`: where chargers upload the logs and diagnostics the node asked for.

Authentication is the one-time token in the path (`ampgate.logs.uploads`); no other credential is asked for,
since chargers send none to an upload URL. The body is either the file itself (PUT, or POST with any content
type but multipart) or `multipart/form-data` (what most chargers' HTTP uploads send): then the file is the
first part with a file name, or the first part when none has one. Either way it is streamed to disk as it
arrives, never held in memory, and refused with 413 `upload_too_large` once it passes --max-upload-bytes (the
partial file removed). Chargers that append their file name to the URL they were given
(`…/uploads/{token}/diag.zip`) are served too; that name is kept when the body names none.

Each upload counts against the public surface's transfer cap and the route's own per-address rate limit. The
answer is 200 `{"size", "sha256"}` (200 rather than 201: some chargers treat any other code as a failure).
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol, runtime_checkable

import msgspec
import multipart
from litestar import HttpMethod, Request, route
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.params import Parameter
from litestar.types import Method
from litestar.types.internal_types import PathParameterDefinition

from ampgate.errors import AmpgateError, PayloadTooLargeError
from ampgate.logs.repository import LogRow
from ampgate.logs.uploads import UPLOAD_PATH
from ampgate.public.app import error_responses, operation_with_body, rate_limit
from ampgate.public.transfers import FILE_TRANSFER
from ampgate.uploading import stream_body

# Uploads per second from one address. A charger makes one upload per request it accepted, but many chargers
# can share one address (mobile carriers' NAT); the token, not this, is what keeps strangers out.
UPLOAD_RATE_PER_S = 20
# Bytes a multipart body may carry besides its file: boundaries, part headers, a few small form fields.
MULTIPART_SLACK = 1 << 20
MULTIPART = "multipart/form-data"
_FILE = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]
UploadOperation = operation_with_body(
    "UploadOperation",
    RequestBody(
        description="The file: the raw body (any content type but multipart), or the file part of "
        "multipart/form-data (the first part with a file name, else the first part)",
        required=True,
        content={
            "application/octet-stream": OpenAPIMediaType(schema=_FILE),
            MULTIPART: OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.OBJECT, properties={"file": _FILE}, required=["file"])
            ),
        },
    ),
)


class Sink(Protocol):
    """One upload in progress (`ampgate.logs.uploads.UploadSink`)."""

    @property
    def received(self) -> int: ...
    async def write(self, data: bytes, /) -> None: ...
    async def restart(self) -> None: ...
    async def commit(self, name: str | None, /) -> LogRow: ...
    async def close(self) -> None: ...


@runtime_checkable
class UploadTarget(Protocol):
    """`ampgate.logs.UploadReceiver`."""

    max_bytes: int

    def begin(self, token: str, /) -> Sink: ...


class UploadReceipt(msgspec.Struct, kw_only=True):
    """What the uploader is told: the bytes stored and their SHA-256 (hex)."""

    size: int
    sha256: str


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the file is larger than this node accepts ({limit} bytes)", code="upload_too_large"
    )


def _invalid(message: str) -> AmpgateError:
    return AmpgateError(message, code="invalid_multipart")


class _MultipartFile:
    """Streams the file part of a multipart body into a sink: the first part with a file name, or the first
    part when none has one."""

    def __init__(self, sink: Sink, boundary: str, content_length: int | None) -> None:
        try:
            self.parser = multipart.PushMultipartParser(boundary, content_length=content_length or -1)
        except multipart.MultipartError as e:
            raise _invalid(f"not a multipart body: {e}") from None
        self.sink = sink
        self.chosen = False  # a part is being (or was) kept
        self.named = False  # the kept part has a file name
        self.writing = False  # the part being parsed is the kept one
        self.filename: str | None = None

    async def take(self, chunk: bytes) -> None:
        try:
            for event in self.parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    if not self.chosen or (not self.named and event.filename):
                        if self.chosen:
                            await self.sink.restart()  # a part with a file name beats a nameless one
                        self.chosen, self.named, self.writing = True, bool(event.filename), True
                        self.filename = event.filename
                    else:
                        self.writing = False
                elif event is None:
                    self.writing = False
                elif self.writing:
                    await self.sink.write(event)
        except multipart.MultipartError as e:
            raise _invalid(f"the multipart body is malformed: {e}") from None

    def finish(self) -> str | None:
        """The body ended: the kept part's file name. Raises if the body was cut short or had no part."""
        try:
            self.parser.close()
        except multipart.MultipartError as e:
            raise _invalid(f"the multipart body is malformed: {e}") from None
        if not self.chosen:
            raise _invalid("the multipart body has no part")
        return self.filename


def upload_operation_id(
    handler: HTTPRouteHandler, method: Method, path: list[str | PathParameterDefinition]
) -> str:
    """`upload_log_put`, `upload_log_post`, and `…_named` for the paths with a file name."""
    named = any(isinstance(p, PathParameterDefinition) and p.name == "name" for p in path)
    return f"upload_log{'_named' if named else ''}_{method.lower()}"


@route(
    [f"{UPLOAD_PATH}/{{token:str}}", f"{UPLOAD_PATH}/{{token:str}}/{{name:path}}"],
    http_method=[HttpMethod.PUT, HttpMethod.POST],
    # One handler, two paths, two methods: four operations, each with its own id (one id for all four made the
    # OpenAPI document fail to build).
    operation_id=upload_operation_id,
    operation_class=UploadOperation,
    opt={FILE_TRANSFER: True},
    # The size is checked here, on the file, against --max-upload-bytes (the app's small default would refuse
    # every real upload).
    request_max_body_size=None,
    middleware=[rate_limit("uploads", UPLOAD_RATE_PER_S)],
    status_code=200,
    summary="Upload a log file the node asked for (one-time token in the path; rate-limited per address)",
    responses=error_responses(
        {
            400: "A malformed multipart/form-data body (`invalid_multipart`)",
            404: "An unknown or void token (`upload_not_found`) or an expired one (`upload_expired`)",
            409: "The token took its upload already (`upload_used`) or one is under way (`upload_in_progress`)",
            413: "The file is larger than --max-upload-bytes (`upload_too_large`); the token stays usable",
            429: "Too many requests from this address (`RateLimit-*`)",
            503: None,
        }
    ),
)
async def upload_log(
    request: Request[Any, Any, Any],
    uploads: NamedDependency[UploadTarget],
    token: Annotated[str, Parameter(description="The one-time token of the upload URL")],
    name: Annotated[str | None, Parameter(description="A file name the charger appended")] = None,
) -> UploadReceipt:
    """Store the body (raw, or the file part of multipart/form-data) as the file of the request this token
    was made for. 404 `upload_not_found` / `upload_expired`, 409 `upload_used` / `upload_in_progress`, 413
    `upload_too_large`, 400 `invalid_multipart`."""
    sink = uploads.begin(token)
    try:
        limit = uploads.max_bytes
        content_type, options = multipart.parse_options_header(request.headers.get("content-type", ""))
        announced = request.content_length
        if content_type == MULTIPART:
            boundary = options.get("boundary")
            if not boundary:
                raise _invalid("a multipart/form-data body needs a boundary")
            if announced is not None and announced > limit + MULTIPART_SLACK:
                raise _too_large(limit)
            body = _MultipartFile(sink, boundary, announced)
            await stream_body(request, limit + MULTIPART_SLACK, body.take, too_large=_too_large)
            filename = body.finish()
        else:
            if announced is not None and announced > limit:
                raise _too_large(limit)
            await stream_body(request, limit, sink.write, too_large=_too_large)
            filename = None
        row = await sink.commit(filename or (name.strip("/") if name else None))
    finally:
        await sink.close()
    assert row.file_size is not None and row.file_sha256 is not None
    return UploadReceipt(size=row.file_size, sha256=row.file_sha256)
