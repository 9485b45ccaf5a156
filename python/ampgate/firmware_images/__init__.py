"""Firmware images: what a firmware campaign installs. Owns the `firmware_images` table and the image directory
(uploaded files, beside the database).

`model` holds the rules as pure functions (validation, which chargers an image fits, whether a booted version is
the image's, the name a file is served under); `files` receives uploads (streamed to disk, SHA-256 computed off
the trio thread); `repository` the table; `service.FirmwareImages` what the API and the campaigns use. The HTTP
parts live with their listeners: `ampgate.api.firmware_images` (operator API, admin writes) and
`ampgate.public.firmware_files` (chargers download uploaded images, with Range requests).
"""

from ampgate.firmware_images.files import DEFAULT_MAX_IMAGE_BYTES, ImageFiles, ImageUpload, StoredFile
from ampgate.firmware_images.model import (
    ImageRow,
    ImageSpec,
    compatible,
    file_name_for,
    matches,
    normalize_version,
    validate_spec,
)
from ampgate.firmware_images.repository import ImageRepository, NewImage
from ampgate.firmware_images.service import FILES_PATH, FirmwareImages, ImageUsers, file_path

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "FILES_PATH",
    "FirmwareImages",
    "ImageFiles",
    "ImageRepository",
    "ImageRow",
    "ImageSpec",
    "ImageUpload",
    "ImageUsers",
    "NewImage",
    "StoredFile",
    "compatible",
    "file_name_for",
    "file_path",
    "matches",
    "normalize_version",
    "validate_spec",
]
