"""The rules of a firmware image, as pure functions: what a valid image is, which chargers it fits, whether a
charger's booted version is the image's, and the name its file is served under. No store, no clock, no I/O.

An image is a version plus either an external location (a CDN: what a fleet of 100k should download from) or a
file the node stores and serves on its public listener. Limits are OCPP 2.0.1's, which are the tighter of the
two versions: a location of at most 512 characters (FirmwareType.location), a signing certificate of at most
5,500 (FirmwareType.signingCertificate), a signature of at most 800 (FirmwareType.signature, also 1.6
SignedUpdateFirmware's), and a version of at most 50 (the firmwareVersion a charger boots with, CiString50 in 1.6
and string[0..50] in 2.0.1): a version longer than any charger can report could never be confirmed installed.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
import unicodedata
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit

import msgspec

from ampgate.errors import ValidationError

MAX_VERSION = 50
MAX_LOCATION = 512
MAX_CERTIFICATE = 5500
MAX_SIGNATURE = 800
# Vendor and model patterns: 2.0.1's vendorName is at most 50 characters (the longer of the two versions'), so a
# pattern longer than that matches nothing a charger can report.
MAX_PATTERN = 50
# Release notes are for operators reading the image list, not a changelog archive: a few screens of text.
MAX_RELEASE_NOTES = 10_000
# Where a charger may download from: what OCPP chargers fetch firmware over (1.6 §5.19 leaves it to the charger;
# FTP is common in the field, HTTP(S) everywhere).
LOCATION_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "sftp"})
VersionMatch = Literal["exact", "normalized"]
VERSION_MATCHES: tuple[str, ...] = ("exact", "normalized")
# The suffixes `normalized` strips: a build after '+' (semver build metadata, "1.4.2+20240312") or after "-b"
# and a digit ("1.4.2-b117"); a "-beta" is not a build suffix and stays.
_BUILD_SUFFIX = re.compile(r"(\+.*|-b\d.*)$", re.DOTALL)
# The extension a served file keeps from the uploaded file's name: one short alphanumeric extension; anything
# else (none, "tar.gz", something odd) is served as ".bin".
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,8}")
DEFAULT_EXTENSION = "bin"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


class ImageSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A firmware image as an admin describes it (the file, if any, arrives beside it)."""

    version: str
    vendor: str | None = None  # exact vendor name or a glob (`*`, `?`, `[...]`); None: any vendor
    model: str | None = None  # likewise for the model
    release_notes: str | None = None
    location: str | None = None  # external URL; None for an uploaded file
    signing_certificate: str | None = None  # PEM
    signature: str | None = None  # Base64
    signed_only: bool = False  # never installed unsigned (no fallback to an unsigned update)
    version_match: VersionMatch = "exact"


class ImageRow(msgspec.Struct, frozen=True, kw_only=True):
    """A firmware image as stored. `location` is the external URL, None for an uploaded file: then `token`,
    `file_path`, `file_name`, `size` and `sha256` are set and the URL chargers get is built from the public base
    URL (`FirmwareImages.location`)."""

    id: int
    version: str
    vendor: str | None
    model: str | None
    release_notes: str | None
    location: str | None
    token: str | None
    file_path: str | None
    file_name: str | None  # the name it is served under (`file_name_for`)
    original_name: str | None  # the uploaded file's own name, made safe; None if it had none
    size: int | None
    sha256: str | None
    signing_certificate: str | None
    signature: str | None
    signed_only: bool
    version_match: str
    created_at: datetime

    @property
    def uploaded(self) -> bool:
        """Whether the node stores and serves this image's file."""
        return self.token is not None


class Versioned(Protocol):
    """What `matches` reads of an image (an ImageRow, or anything with the same two fields)."""

    @property
    def version(self) -> str: ...
    @property
    def version_match(self) -> str: ...


class Compatible(Protocol):
    """What `compatible` reads of an image."""

    @property
    def vendor(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...


# -- version matching -------------------------------------------------------------------------------------------


def normalize_version(version: str) -> str:
    """`version` as `normalized` matching compares it: surrounding whitespace removed, then one leading 'v' or
    'V' ("v1.4.2" → "1.4.2"), then a build suffix: everything from a '+' ("1.4.2+20240312" → "1.4.2") or from
    "-b" followed by a digit ("1.4.2-b117" → "1.4.2"). Nothing else changes: case, "-beta", "-rc1" and leading
    zeros are significant. A version that is only a build suffix normalizes to ""."""
    text = version.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    return _BUILD_SUFFIX.sub("", text)


def matches(image: Versioned, booted_version: str | None) -> bool:
    """Whether a charger that booted reporting `booted_version` runs `image`'s version: with `exact` (the
    default) the two strings are equal; with `normalized` they are equal after `normalize_version` (and not
    empty). A charger that reported no version runs no known image: False."""
    if booted_version is None:
        return False
    if image.version_match == "normalized":
        wanted = normalize_version(image.version)
        return wanted != "" and normalize_version(booted_version) == wanted
    return booted_version == image.version


def compatible(image: Compatible, vendor: str | None, model: str | None) -> bool:
    """Whether a charger reporting `vendor` and `model` (its BootNotification's) may get `image`: each of the
    image's vendor and model is None (any), an exact name, or a glob (`*`, `?`, `[...]`, case-sensitive as OCPP
    names are); a charger that reported no vendor (or model) fits only an image that names none."""
    for pattern, value in ((image.vendor, vendor), (image.model, model)):
        if pattern is None:
            continue
        if value is None or not fnmatch.fnmatchcase(value, pattern):
            return False
    return True


# -- file names -------------------------------------------------------------------------------------------------


def file_name_for(version: str, original_name: str | None) -> str:
    """The name an uploaded image's file is served under: its version, percent-encoded where it is not a plain
    path character, then the uploaded file's extension when that is one short alphanumeric one, else ".bin"
    ("ac22_fw.bin" at version 2.1.0 → "2.1.0.bin"; "update.tar.gz" → "2.1.0.gz"; no name → "2.1.0.bin").

    Why the version and nothing before it: chargers (and `ampgate sim`) tell what they installed from the last
    path segment of the location without its extension; a stem in front ("ac22_fw-2.1.0") could not be told
    apart from versions that contain '-' themselves. The uploaded name is kept beside it (`original_name`), for
    operators."""
    ext = DEFAULT_EXTENSION
    if original_name:
        base = original_name.replace("\\", "/").rsplit("/", 1)[-1]
        if "." in base:
            candidate = base.rsplit(".", 1)[1]
            if _EXTENSION.fullmatch(candidate):
                ext = candidate.lower()
    return f"{quote(version, safe='.-_~+')}.{ext}"


# -- validation -------------------------------------------------------------------------------------------------


def _text(value: Any, field: str, max_len: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValidationError(f"{field} is required", field=field)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    if len(value) > max_len:
        raise ValidationError(f"{field} is at most {max_len} characters, got {len(value)}", field=field)
    return value


def _no_controls(value: str, field: str) -> None:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError(f"{field} may not contain control characters", field=field)


def validate_location(location: str) -> str:
    """An external location: an http, https, ftp, ftps or sftp URL with a host, at most 512 characters (2.0.1's
    limit; 1.6 has none, so the tighter one serves both). Raises ValidationError(field="location")."""
    if len(location) > MAX_LOCATION:
        raise ValidationError(
            f"location is at most {MAX_LOCATION} characters (OCPP 2.0.1's limit), got {len(location)}",
            field="location",
        )
    _no_controls(location, "location")
    try:
        parts = urlsplit(location)
        host = parts.hostname
    except ValueError:
        raise ValidationError("location is not a URL", field="location") from None
    if parts.scheme.lower() not in LOCATION_SCHEMES or not host or " " in location:
        raise ValidationError(
            f"location must be a URL with a host and one of the schemes {', '.join(sorted(LOCATION_SCHEMES))}",
            field="location",
        )
    return location


def validate_certificate(pem: str) -> str:
    """A signing certificate: at most 5,500 characters (2.0.1's signingCertificate) holding one PEM
    CERTIFICATE block. Raises ValidationError(field="signing_certificate")."""
    if len(pem) > MAX_CERTIFICATE:
        raise ValidationError(
            f"signing_certificate is at most {MAX_CERTIFICATE} characters (OCPP 2.0.1's limit), got {len(pem)}",
            field="signing_certificate",
        )
    if not _PEM.search(pem):
        raise ValidationError(
            "signing_certificate must be a PEM certificate (-----BEGIN CERTIFICATE----- ...)",
            field="signing_certificate",
        )
    return pem


def validate_signature(signature: str) -> str:
    """A signature: Base64 (standard alphabet, padded), at most 800 characters. Raises
    ValidationError(field="signature")."""
    if len(signature) > MAX_SIGNATURE:
        raise ValidationError(
            f"signature is at most {MAX_SIGNATURE} characters (OCPP's limit), got {len(signature)}",
            field="signature",
        )
    try:
        if not signature or not base64.b64decode(signature, validate=True):
            raise ValueError("empty")
    except (binascii.Error, ValueError):
        raise ValidationError("signature must be non-empty Base64", field="signature") from None
    return signature


def validate_pattern(value: str | None, field: str) -> str | None:
    """A vendor or model: None, an exact name or a glob, 1 to 50 characters, no control characters."""
    text = _text(value, field, MAX_PATTERN)
    if text is None:
        return None
    if not text.strip():
        raise ValidationError(f"{field} may not be empty (omit it to match any)", field=field)
    _no_controls(text, field)
    return text


def validate_version(version: Any) -> str:
    """A version: 1 to 50 characters (what a charger can report at boot), no control characters, not only
    spaces. Raises ValidationError(field="version")."""
    text = _text(version, "version", MAX_VERSION, required=True)
    assert text is not None
    if not text.strip():
        raise ValidationError("version may not be empty", field="version")
    _no_controls(text, "version")
    return text


def validate_spec(spec: ImageSpec, *, uploaded: bool) -> ImageSpec:
    """Return `spec` if it describes a valid image, its file uploaded (`uploaded`) or at `spec.location`.
    Raises ValidationError naming the field: version, vendor, model, release_notes, location (missing for an
    external image, present beside an uploaded file, too long, not a URL), signing_certificate (too long, not
    PEM), signature (too long, not Base64; missing when `signed_only`), version_match."""
    validate_version(spec.version)
    validate_pattern(spec.vendor, "vendor")
    validate_pattern(spec.model, "model")
    _text(spec.release_notes, "release_notes", MAX_RELEASE_NOTES)
    if uploaded:
        if spec.location is not None:
            raise ValidationError(
                "an image is either uploaded or at a location, not both: omit location", field="location"
            )
    elif spec.location is None:
        raise ValidationError("location is required unless the file is uploaded", field="location")
    else:
        validate_location(spec.location)
    if spec.signing_certificate is not None:
        validate_certificate(spec.signing_certificate)
    if spec.signature is not None:
        validate_signature(spec.signature)
    if spec.signed_only and spec.signature is None:
        raise ValidationError(
            "a signed_only image needs a signature: it is never installed unsigned", field="signature"
        )
    if spec.version_match not in VERSION_MATCHES:
        raise ValidationError(
            f"version_match must be one of {', '.join(VERSION_MATCHES)}", field="version_match"
        )
    return spec
