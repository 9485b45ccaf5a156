"""Charger tags and selectors as values, with their rules: pure, no store.

A tag is 1 to 64 characters of `A-Z a-z 0-9 . _ - : /` ("region:nl", "batch-2025/03", "pilot"), compared exactly
(case matters, as in charger ids). The alphabet keeps tags safe in URLs, query strings, CSV exports and shell
commands without quoting, and leaves ':' and '/' for the key:value and path-like conventions operators use; a
charger has at most 32 (what a PUT may set, and what a selection reads per charger).

A selector names chargers by what they reported at boot (vendor, model, firmware version: exact), where they are
placed (site), their tags (all of those given) and explicit ids; every criterion given must hold (AND), and a
selector with none selects every charger. `charger_ids` None means "any id"; an empty list selects nothing, so a
campaign sent `"charger_ids": []` is empty rather than fleet-wide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

from ampgate.errors import ValidationError
from ampgate.store.chargers import validate_charger_id

MAX_TAG = 64
MAX_TAGS = 32
TAG_ALPHABET = "A-Z a-z 0-9 . _ - : /"
_TAG = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
# Explicit ids in one selector: a campaign names at most a whole fleet by id.
MAX_SELECTOR_IDS = 200_000


class ChargerSelector(msgspec.Struct, frozen=True, kw_only=True):
    """Which chargers: every criterion given must hold (see the module's docstring)."""

    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    site_id: str | None = None
    tags: tuple[str, ...] = ()  # the charger has all of them
    charger_ids: tuple[str, ...] | None = None  # None: any; (): none


class ChargerSelection(msgspec.Struct, frozen=True, kw_only=True):
    """A selected charger with what a campaign decides by: its protocol (the message to send), vendor and
    model (the image's compatibility), firmware version (already installed?), site (maintenance windows)."""

    id: str
    protocol: str | None
    vendor: str | None
    model: str | None
    firmware_version: str | None
    site_id: str | None


def validate_tag(tag: object, field: str = "tags") -> str:
    """Return `tag` if it is 1 to 64 characters of the tag alphabet. Raises ValidationError naming `field`."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise ValidationError(
            f"a tag is 1 to {MAX_TAG} characters of {TAG_ALPHABET}, got {tag!r}"[:300], field=field
        )
    return tag


def validate_tags(tags: Iterable[object], field: str = "tags") -> tuple[str, ...]:
    """The distinct tags, sorted, if each is valid and there are at most MAX_TAGS. Raises ValidationError
    naming `field` (`tags[i]` for a bad one)."""
    out: set[str] = set()
    for i, tag in enumerate(tags):
        out.add(validate_tag(tag, f"{field}[{i}]"))
    if len(out) > MAX_TAGS:
        raise ValidationError(f"a charger has at most {MAX_TAGS} tags, got {len(out)}", field=field)
    return tuple(sorted(out))


def validate_selector(selector: ChargerSelector) -> ChargerSelector:
    """Return the selector with its tags and ids de-duplicated and sorted, if each is valid. Raises
    ValidationError naming `tags[i]`, `charger_ids[i]` or `charger_ids`."""
    tags = validate_tags(selector.tags)
    ids = selector.charger_ids
    if ids is not None:
        if len(ids) > MAX_SELECTOR_IDS:
            raise ValidationError(f"at most {MAX_SELECTOR_IDS} charger ids", field="charger_ids")
        for i, cid in enumerate(ids):
            try:
                validate_charger_id(cid)
            except ValidationError as e:
                raise ValidationError(e.message, field=f"charger_ids[{i}]") from None
        ids = tuple(sorted(set(ids)))
    return msgspec.structs.replace(selector, tags=tags, charger_ids=ids)
