"""`FirmwareImages`: adding, reading and deleting firmware images, and the URL chargers download each from.

An image with an external location is one row. An uploaded one is a file first (`files.ImageUpload`: streamed,
hashed, renamed once whole) and then its row; a failure between the two removes the file, and a file without a
row left by a crash is swept at the next start. Deleting removes the row, then the file; it is refused while a
campaign uses the image (`ImageUsers`, which the campaigns package implements).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from ampgate.clock import Clock
from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.events import Event, FirmwareImageCreated, FirmwareImageDeleted
from ampgate.firmware_images import model
from ampgate.firmware_images.files import ImageFiles, ImageUpload
from ampgate.firmware_images.model import ImageRow, ImageSpec
from ampgate.firmware_images.repository import ImageRepository, NewImage
from ampgate.logs.uploads import safe_name

log = logging.getLogger(__name__)

# Where uploaded images are served on the public listener: /firmware/files/<token>/<file name>.
FILES_PATH = "/firmware/files"


class ImageUsers(Protocol):
    """Who may still need an image: the firmware campaigns (a draft, scheduled, running or paused campaign of
    the image uses it). Implemented by the campaigns package."""

    def uses(self, image_id: int, /) -> bool: ...


class Publish(Protocol):
    """The event bus (`ampgate.bus.EventBus`)."""

    def publish(self, event: Event, /) -> None: ...


def file_path(row: ImageRow) -> str:
    """The public path of an uploaded image's file: `/firmware/files/<token>/<file name>`."""
    assert row.token is not None and row.file_name is not None, "only uploaded images have a file"
    return f"{FILES_PATH}/{row.token}/{row.file_name}"


class FirmwareImages:
    """Firmware images as admins manage them, and their locations for chargers. `public_url(path)` turns a public
    path into the URL chargers reach (from --public-base-url); it is called only when a location is read."""

    def __init__(
        self,
        rows: ImageRepository,
        files: ImageFiles,
        users: ImageUsers,
        bus: Publish,
        clock: Clock,
        public_url: Callable[[str], str],
    ) -> None:
        self._rows = rows
        self.files = files
        self._users = users
        self._bus = bus
        self._clock = clock
        self._public_url = public_url

    @property
    def max_bytes(self) -> int:
        """The largest image file accepted."""
        return self.files.max_bytes

    def sweep(self) -> int:
        """Remove stored files that no image refers to (start-up). Returns how many."""
        return self.files.sweep(self._rows.has_token)

    # -- creating ---------------------------------------------------------------------------------------------

    async def create(self, spec: ImageSpec) -> ImageRow:
        """Add an image at an external location. Raises ValidationError naming the field (model.validate_spec)."""
        row = await self._rows.insert(NewImage(spec=model.validate_spec(spec, uploaded=False)))
        self._created(row)
        return row

    def begin_upload(self) -> ImageUpload:
        """Start receiving an image's file (write it, then `create_uploaded`; `close` the upload always)."""
        return self.files.begin()

    async def create_uploaded(
        self, spec: ImageSpec, upload: ImageUpload, original_name: str | None
    ) -> ImageRow:
        """Add an image whose file `upload` has received completely: the file is made durable under its token,
        then the row committed. Raises ValidationError naming the field (the spec's, or `file` when it is empty
        or over the limit); the file is then removed by the upload's `close`."""
        model.validate_spec(spec, uploaded=True)
        if upload.received == 0:
            raise ValidationError("the file is empty", field="file", code="file_empty")
        stored = await upload.commit()
        original = safe_name(original_name)
        row = await self._rows.insert(
            NewImage(
                spec=spec,
                file=stored,
                file_name=model.file_name_for(spec.version, original),
                original_name=original,
            )
        )
        upload.keep()
        self._created(row)
        return row

    def _created(self, row: ImageRow) -> None:
        self._bus.publish(
            FirmwareImageCreated(
                at=self._clock.now(),
                image_id=row.id,
                version=row.version,
                uploaded=row.uploaded,
                size=row.size,
                sha256=row.sha256,
            )
        )

    # -- reading ----------------------------------------------------------------------------------------------

    def get(self, image_id: int) -> ImageRow | None:
        """The image `image_id`, or None."""
        return self._rows.get(image_id)

    def page(self, limit: int, before: int | None = None, version: str | None = None) -> list[ImageRow]:
        """Up to `limit` images, newest first, below id `before`, only `version` when given."""
        return self._rows.page(limit, before, version)

    def location(self, row: ImageRow) -> str:
        """Where chargers download `row` from: its external location, or the node's public URL of its file."""
        if row.location is not None:
            return row.location
        return self._public_url(file_path(row))

    def by_token(self, token: str) -> ImageRow | None:
        """The uploaded image served under `token` (the public download route), or None."""
        return self._rows.by_token(token)

    # -- deleting ---------------------------------------------------------------------------------------------

    async def delete(self, image_id: int) -> ImageRow:
        """Delete image `image_id` and the node's copy of its file. Raises NotFoundError (field image_id),
        ConflictError `image_in_use` while a campaign uses it."""
        if self._rows.get(image_id) is None:
            raise NotFoundError(f"firmware image {image_id} does not exist", field="image_id")
        if self._users.uses(image_id):
            raise ConflictError(
                f"firmware image {image_id} is used by a campaign; finish or cancel it first",
                field="image_id",
                code="image_in_use",
            )
        row = await self._rows.delete(image_id)
        if row.file_path is not None:
            await self.files.remove(row.file_path)
        self._bus.publish(FirmwareImageDeleted(at=self._clock.now(), image_id=row.id, version=row.version))
        return row
