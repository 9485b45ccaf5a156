"""/api/v1/firmware/images: the firmware images campaigns install. Add one (JSON with an external `location`, or
`multipart/form-data` with the file, which the node stores and serves to chargers on its public listener), list,
read, delete.

Roles: adding and deleting images is for admins (firmware from an arbitrary location is a security matter);
reading them for viewers.

A multipart body carries the image's fields as form fields of the same names (`version`, `vendor`, `signed_only`
as `true`/`false`, ...) and the file as the part named `file`, in any order: `curl -F version=2.1.0 -F
file=@ac22.bin`. The file is streamed to disk as it arrives and hashed off the trio thread; a file over the limit
(--max-firmware-bytes, default 1 GiB: this route's own limit, far above the API's 1 MiB for other bodies) is
refused with 422 `file_too_large` and nothing is kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import multipart
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import FirmwareImageService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor
from ampgate.api.schemas import ErrorBody
from ampgate.errors import (
    AmpgateError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
    read_msgspec_error,
)
from ampgate.firmware_images import ImageRow, ImageSpec, ImageUpload
from ampgate.firmware_images.files import too_large
from ampgate.firmware_images.model import MAX_CERTIFICATE, MAX_LOCATION, MAX_VERSION
from ampgate.uploading import stream_body

IMAGES_PATH = "/api/v1/firmware/images"
MULTIPART = "multipart/form-data"
# A JSON body (or one form field) is the image's metadata: a certificate of 5,500 characters and release notes
# of 10,000 fit many times over.
MAX_METADATA_BYTES = 64 << 10
# Bytes a multipart body may carry besides its file: boundaries, part headers, the form fields.
MULTIPART_SLACK = 1 << 20
FILE_FIELD = "file"

# -- bodies -----------------------------------------------------------------------------------------------------


class ImageCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A firmware image. JSON needs `location`; a multipart body carries the file instead (part `file`)."""

    version: Annotated[
        str,
        Meta(description=f"The version chargers report once it is installed (1 to {MAX_VERSION} characters)"),
    ]
    vendor: Annotated[
        str | None, Meta(description="Chargers it fits: exact vendor name or glob (* ? [..]); omit for any")
    ] = None
    model: Annotated[str | None, Meta(description="Exact model or glob; omit for any")] = None
    release_notes: str | None = None
    location: Annotated[
        str | None,
        Meta(
            description=f"Where chargers download it (http, https, ftp, ftps, sftp; at most {MAX_LOCATION})"
        ),
    ] = None
    signing_certificate: Annotated[
        str | None, Meta(description=f"PEM certificate of the signer, at most {MAX_CERTIFICATE} characters")
    ] = None
    signature: Annotated[str | None, Meta(description="Base64 signature of the image")] = None
    signed_only: Annotated[
        bool,
        Meta(description="Never install it unsigned (no fallback to an unsigned update); needs signature"),
    ] = False
    version_match: Annotated[
        Literal["exact", "normalized"],
        Meta(
            description="How a charger's booted version is compared with `version`: exact, or normalized (a "
            "leading v and a build suffix after + or -b<digit> ignored)"
        ),
    ] = "exact"

    def spec(self) -> ImageSpec:
        return ImageSpec(
            version=self.version,
            vendor=self.vendor,
            model=self.model,
            release_notes=self.release_notes,
            location=self.location,
            signing_certificate=self.signing_certificate,
            signature=self.signature,
            signed_only=self.signed_only,
            version_match=self.version_match,
        )


class ImageRead(msgspec.Struct, kw_only=True):
    """A firmware image. `location` is where chargers download it: the external URL, or the node's public URL
    of the uploaded file (`uploaded` true; then `size`, `sha256`, `file_name` are set)."""

    id: int
    version: str
    vendor: str | None
    model: str | None
    release_notes: str | None
    location: str
    uploaded: bool
    file_name: str | None  # the name it is served under: <version>.<extension>
    original_name: str | None  # the uploaded file's own name
    size: int | None
    sha256: str | None  # hex
    signing_certificate: str | None
    signature: str | None
    signed_only: bool
    version_match: str
    created_at: datetime


class ImagePage(msgspec.Struct, kw_only=True):
    """One page of images, newest first; `next_cursor` null on the last."""

    items: list[ImageRead]
    next_cursor: str | None


def image_read(images: FirmwareImageService, row: ImageRow) -> ImageRead:
    """The API's view of a stored image."""
    return ImageRead(
        id=row.id,
        version=row.version,
        vendor=row.vendor,
        model=row.model,
        release_notes=row.release_notes,
        location=images.location(row),
        uploaded=row.uploaded,
        file_name=row.file_name,
        original_name=row.original_name,
        size=row.size,
        sha256=row.sha256,
        signing_certificate=row.signing_certificate,
        signature=row.signature,
        signed_only=row.signed_only,
        version_match=row.version_match,
        created_at=row.created_at,
    )


# -- reading the body ---------------------------------------------------------------------------------------------


def _decoded(value: Any, *, from_form: bool) -> ImageCreate:
    """The metadata as an ImageCreate (form fields are strings: `strict=False` reads "true" as a bool). Raises
    ValidationError naming the field msgspec names."""
    try:
        if from_form:
            return msgspec.convert(value, ImageCreate, strict=False)
        return msgspec.json.decode(value, type=ImageCreate)
    except msgspec.ValidationError as e:  # a subclass of DecodeError: first
        problem = read_msgspec_error(e)
        raise ValidationError(problem.text, field=problem.path or None) from None
    except msgspec.DecodeError:
        raise ValidationError("the body is not valid JSON", code="invalid_json") from None


def _body_too_large(limit: int) -> AmpgateError:
    return PayloadTooLargeError(f"the body is larger than {limit} bytes")


class _Form:
    """A multipart body read as it arrives: the form fields kept (each at most MAX_METADATA_BYTES), the part
    named `file` streamed into the upload."""

    def __init__(self, upload: ImageUpload, boundary: str, content_length: int | None) -> None:
        try:
            self.parser = multipart.PushMultipartParser(boundary, content_length=content_length or -1)
        except multipart.MultipartError as e:
            raise ValidationError(f"not a multipart body: {e}", code="invalid_multipart") from None
        self.upload = upload
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.has_file = False
        self._name: str | None = None  # the part being read
        self._value = bytearray()

    async def take(self, chunk: bytes) -> None:
        try:
            events = list(self.parser.parse(chunk))
        except multipart.MultipartError as e:
            raise ValidationError(f"the multipart body is malformed: {e}", code="invalid_multipart") from None
        for event in events:
            if isinstance(event, multipart.MultipartSegment):
                self._begin(event)
            elif event is None:
                self._end()
            elif self._name == FILE_FIELD:
                await self.upload.write(event)
            elif self._name is not None:
                self._value += event
                if len(self._value) > MAX_METADATA_BYTES:
                    raise ValidationError(
                        f"the form field is larger than {MAX_METADATA_BYTES} bytes", field=self._name
                    )

    def _begin(self, segment: multipart.MultipartSegment) -> None:
        name = segment.name
        if name == FILE_FIELD:
            if self.has_file:
                raise ValidationError("the body has more than one file part", field=FILE_FIELD)
            self.has_file = True
            self.filename = segment.filename
        elif name in self.fields:
            raise ValidationError(f"the form field {name} appears twice", field=name)
        self._name = name
        self._value = bytearray()

    def _end(self) -> None:
        name, self._name = self._name, None
        if name is None or name == FILE_FIELD:
            return
        try:
            self.fields[name] = self._value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"the form field {name} is not UTF-8", field=name) from None

    def finish(self) -> None:
        """The body ended. Raises if it was cut short or carried no file."""
        try:
            self.parser.close()
        except multipart.MultipartError as e:
            raise ValidationError(f"the multipart body is malformed: {e}", code="invalid_multipart") from None
        if not self.has_file:
            raise ValidationError(
                f"a multipart body carries the image as the part named {FILE_FIELD!r}", field=FILE_FIELD
            )


async def _create_uploaded(
    request: Request[Any, Any, Any], images: FirmwareImageService, boundary: str | None
) -> ImageRow:
    if not boundary:
        raise ValidationError("a multipart/form-data body needs a boundary", code="invalid_multipart")
    limit = images.max_bytes
    announced = request.content_length
    if announced is not None and announced > limit + MULTIPART_SLACK:
        raise too_large(limit)  # nothing read, nothing stored
    upload = images.begin_upload()
    try:
        form = _Form(upload, boundary, announced)
        try:
            await stream_body(
                request, limit + MULTIPART_SLACK, form.take, too_large=_body_too_large, refusals=AmpgateError
            )
        except PayloadTooLargeError:
            raise too_large(limit) from None
        form.finish()
        spec = _decoded(form.fields, from_form=True).spec()
        return await images.create_uploaded(spec, upload, form.filename)
    finally:
        await upload.close()


async def _create_external(request: Request[Any, Any, Any], images: FirmwareImageService) -> ImageRow:
    body = bytearray()

    async def take(chunk: bytes) -> None:
        body.extend(chunk)

    await stream_body(request, MAX_METADATA_BYTES, take, too_large=_body_too_large, refusals=AmpgateError)
    return await images.create(_decoded(bytes(body), from_form=False).spec())


# -- routes -----------------------------------------------------------------------------------------------------

_NOT_FOUND = {404: ResponseSpec(ErrorBody, description="No such image (`field`: image_id)")}


class FirmwareImageController(Controller):
    path = IMAGES_PATH
    tags = ("firmware",)

    @post(
        "/",
        operation_id="create_firmware_image",
        guards=[requires_admin],
        status_code=201,
        # The file is checked against --max-firmware-bytes as it arrives; the app's 1 MiB would refuse any image.
        request_max_body_size=None,
        responses={
            **COMMON_ERRORS,
            413: ResponseSpec(ErrorBody, description="A JSON body over 64 KiB"),
        },
        summary="Add a firmware image (role: admin)",
        description="Role: admin. JSON with `location` (an external URL, a CDN at fleet scale), or "
        "multipart/form-data with the fields as form fields and the file as part `file` (stored by the node, "
        "served to chargers at /firmware/files/{token}/{version}.{ext} on the public listener). 422 naming the "
        "field: signed_only without signature, signing_certificate over 5,500 characters, location over 512, "
        "file over the limit (`file_too_large`; nothing is kept) or empty.",
    )
    async def create_image(
        self, request: Request[Any, Any, Any], firmware_images: NamedDependency[FirmwareImageService]
    ) -> Response[ImageRead]:
        """201 with the image and its Location. 422 naming the field, 413 for an oversized JSON body."""
        content_type, options = multipart.parse_options_header(request.headers.get("content-type", ""))
        if content_type == MULTIPART:
            row = await _create_uploaded(request, firmware_images, options.get("boundary"))
        elif content_type in ("application/json", ""):
            row = await _create_external(request, firmware_images)
        else:
            raise ValidationError(
                "send application/json (with a location) or multipart/form-data (with the file)",
                field="Content-Type",
                code="unsupported_media_type",
            )
        return Response(
            image_read(firmware_images, row),
            status_code=201,
            headers={"Location": f"{IMAGES_PATH}/{row.id}"},
        )

    @get(
        "/",
        operation_id="list_firmware_images",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="List firmware images (role: viewer)",
        description="Role: viewer. Newest first.",
    )
    async def list_images(
        self,
        firmware_images: NamedDependency[FirmwareImageService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        version: Annotated[str | None, Parameter(description="Only images of this version")] = None,
    ) -> ImagePage:
        """One page of images, newest first. 422 naming limit or cursor."""
        before = int_cursor(cursor)
        rows = firmware_images.page(limit + 1, before, version)
        more = len(rows) > limit
        rows = rows[:limit]
        return ImagePage(
            items=[image_read(firmware_images, r) for r in rows],
            next_cursor=str(rows[-1].id) if more else None,
        )

    @get(
        "/{image_id:int}",
        operation_id="get_firmware_image",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="One firmware image (role: viewer)",
        description="Role: viewer.",
    )
    async def get_image(
        self,
        firmware_images: NamedDependency[FirmwareImageService],
        image_id: Annotated[int, Parameter(description="The image's id")],
    ) -> ImageRead:
        """The image. 404 (field image_id)."""
        row = firmware_images.get(image_id)
        if row is None:
            raise NotFoundError(f"firmware image {image_id} does not exist", field="image_id")
        return image_read(firmware_images, row)

    @delete(
        "/{image_id:int}",
        operation_id="delete_firmware_image",
        guards=[requires_admin],
        responses={
            **COMMON_ERRORS,
            **_NOT_FOUND,
            409: ResponseSpec(ErrorBody, description="`image_in_use`: a campaign uses it"),
        },
        summary="Delete a firmware image (role: admin)",
        description="Role: admin. Removes the node's copy of an uploaded file too; refused while a campaign "
        "uses the image.",
    )
    async def delete_image(
        self,
        firmware_images: NamedDependency[FirmwareImageService],
        image_id: Annotated[int, Parameter(description="The image's id")],
    ) -> None:
        """204. 404 (field image_id), 409 `image_in_use`."""
        await firmware_images.delete(image_id)
