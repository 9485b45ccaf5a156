"""The rules of a firmware image, pure: version matching (exact and normalized), vendor/model compatibility
(exact and glob), the served file name, and every refusal of `validate_spec` with its field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ampgate.errors import ValidationError
from ampgate.firmware_images import ImageRow, ImageSpec, compatible, file_name_for, matches, normalize_version
from ampgate.firmware_images.model import MAX_CERTIFICATE, MAX_LOCATION, validate_spec

CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ==\n-----END CERTIFICATE-----\n"


def image(
    version: str = "2.1.0", match: str = "exact", vendor: str | None = None, model: str | None = None
) -> ImageRow:
    return ImageRow(
        id=1,
        version=version,
        vendor=vendor,
        model=model,
        release_notes=None,
        location="https://cdn.test/fw.bin",
        token=None,
        file_path=None,
        file_name=None,
        original_name=None,
        size=None,
        sha256=None,
        signing_certificate=None,
        signature=None,
        signed_only=False,
        version_match=match,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("1.4.2", "1.4.2"),
        ("v1.4.2", "1.4.2"),
        ("V1.4.2", "1.4.2"),
        ("1.4.2+20240312", "1.4.2"),
        ("v1.4.2+build.7", "1.4.2"),
        ("1.4.2-b117", "1.4.2"),
        ("1.4.2-b1-dirty", "1.4.2"),
        ("1.4.2-beta", "1.4.2-beta"),
        ("1.4.2-rc1", "1.4.2-rc1"),
        (" 1.4.2 ", "1.4.2"),
        ("vv1", "v1"),
        ("1.4.02", "1.4.02"),
    ],
)
def test_normalize_strips_a_leading_v_and_a_build_suffix_only(given: str, normal: str) -> None:
    assert normalize_version(given) == normal


def test_exact_matching_compares_the_strings() -> None:
    img = image("v2.1.0")
    assert matches(img, "v2.1.0")
    assert not matches(img, "2.1.0")
    assert not matches(img, "v2.1.0+5")
    assert not matches(img, None)


def test_normalized_matching_ignores_the_v_and_the_build() -> None:
    img = image("v2.1.0", "normalized")
    for booted in ("2.1.0", "v2.1.0", "2.1.0+77", "V2.1.0-b12"):
        assert matches(img, booted), booted
    for booted in ("2.1.1", "2.1.0-beta", "2.1", None):
        assert not matches(img, booted), booted
    # An image whose version is only a build suffix matches nothing rather than every empty normal form.
    assert not matches(image("+5", "normalized"), "+6")


def test_compatibility_is_exact_or_glob_and_none_means_any() -> None:
    assert compatible(image(), "ABB", "Terra AC")
    assert compatible(image(), None, None)
    assert compatible(image(vendor="ABB"), "ABB", "x")
    assert not compatible(image(vendor="ABB"), "abb", "x")  # OCPP names are case-sensitive here
    assert not compatible(image(vendor="ABB"), None, "x")
    assert compatible(image(vendor="ABB", model="Terra AC*"), "ABB", "Terra AC W22")
    assert not compatible(image(vendor="ABB", model="Terra AC*"), "ABB", "Terra DC 50")
    assert compatible(image(model="AC2?"), "X", "AC22")
    assert compatible(image(model="[AB]C22"), "X", "BC22")
    assert not compatible(image(model="AC2?"), "X", "AC222")


@pytest.mark.parametrize(
    ("version", "original", "name"),
    [
        ("2.1.0", "ac22_fw.bin", "2.1.0.bin"),
        ("2.1.0", "update.tar.gz", "2.1.0.gz"),
        ("2.1.0", None, "2.1.0.bin"),
        ("2.1.0", "firmware", "2.1.0.bin"),
        ("2.1.0", "weird.ext-with-dash", "2.1.0.bin"),
        ("2.1.0", "FW.ZIP", "2.1.0.zip"),
        ("1.0 beta/2", "x.bin", "1.0%20beta%2F2.bin"),
        ("1.0+b5", "x.bin", "1.0+b5.bin"),
    ],
)
def test_the_served_name_is_the_version_and_an_extension(
    version: str, original: str | None, name: str
) -> None:
    assert file_name_for(version, original) == name


def refused(spec: ImageSpec, field: str, *, uploaded: bool = False) -> str:
    with pytest.raises(ValidationError) as e:
        validate_spec(spec, uploaded=uploaded)
    assert e.value.field == field, e.value
    assert e.value.status_hint == 422
    return e.value.message


LOC = "https://cdn.test/fw/2.1.0.bin"


def test_valid_specs_pass() -> None:
    spec = ImageSpec(
        version="2.1.0", location=LOC, signing_certificate=CERT, signature="c2ln", signed_only=True
    )
    assert validate_spec(spec, uploaded=False) is spec
    assert validate_spec(ImageSpec(version="2.1.0"), uploaded=True)
    assert validate_spec(ImageSpec(version="2.1.0", location="ftp://fw.test/a.bin"), uploaded=False)


def test_every_refusal_names_its_field() -> None:
    assert "signature" in refused(ImageSpec(version="1", location=LOC, signed_only=True), "signature")
    assert "5500" in refused(
        ImageSpec(version="1", location=LOC, signing_certificate=CERT + "x" * MAX_CERTIFICATE),
        "signing_certificate",
    )
    refused(ImageSpec(version="1", location=LOC, signing_certificate="not a pem"), "signing_certificate")
    assert "512" in refused(
        ImageSpec(version="1", location="https://cdn.test/" + "a" * MAX_LOCATION), "location"
    )
    refused(ImageSpec(version="1", location="file:///etc/passwd"), "location")
    refused(ImageSpec(version="1", location="https:///nohost"), "location")
    refused(ImageSpec(version="1"), "location")  # external without a location
    refused(ImageSpec(version="1", location=LOC), "location", uploaded=True)  # both
    refused(ImageSpec(version="1", location=LOC, signature="not base64!"), "signature")
    refused(ImageSpec(version="1", location=LOC, signature="A" * 804), "signature")
    refused(ImageSpec(version="", location=LOC), "version")
    refused(ImageSpec(version="x" * 51, location=LOC), "version")
    refused(ImageSpec(version="1\n", location=LOC), "version")
    refused(ImageSpec(version="1", location=LOC, vendor=""), "vendor")
    refused(ImageSpec(version="1", location=LOC, model="m" * 51), "model")
    refused(ImageSpec(version="1", location=LOC, release_notes="n" * 10_001), "release_notes")
    refused(ImageSpec(version="1", location=LOC, version_match="fuzzy"), "version_match")  # type: ignore[arg-type]
