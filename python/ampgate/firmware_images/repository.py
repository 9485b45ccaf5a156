"""The `firmware_images` table behind `ImageRepository`. Reads are indexed queries on the trio thread; writes are
ops on the store's writer thread, each waited for (an image exists for the API once its row has committed)."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.errors import NotFoundError
from ampgate.firmware_images.files import StoredFile
from ampgate.firmware_images.model import ImageRow, ImageSpec
from ampgate.store.store import Store

_COLUMNS = (
    "id, version, vendor, model, release_notes, location, token, file_path, file_name, original_name, size,"
    " sha256, signing_certificate, signature, signed_only, version_match, created_at"
)


class NewImage(msgspec.Struct, frozen=True, kw_only=True):
    """What an insert writes: the checked spec, and the stored file when the image was uploaded."""

    spec: ImageSpec
    file: StoredFile | None = None
    file_name: str | None = None
    original_name: str | None = None


def _row(v: tuple[Any, ...]) -> ImageRow:
    created = parse_iso(v[16])
    assert created is not None  # NOT NULL
    return ImageRow(
        id=v[0],
        version=v[1],
        vendor=v[2],
        model=v[3],
        release_notes=v[4],
        location=v[5],
        token=v[6],
        file_path=v[7],
        file_name=v[8],
        original_name=v[9],
        size=v[10],
        sha256=v[11],
        signing_certificate=v[12],
        signature=v[13],
        signed_only=bool(v[14]),
        version_match=v[15],
        created_at=created,
    )


def read_image(conn: sqlite3.Connection, image_id: int) -> ImageRow | None:
    v = conn.execute(f"SELECT {_COLUMNS} FROM firmware_images WHERE id = ?", (image_id,)).fetchone()
    return None if v is None else _row(v)


def insert_image(db: sqlite_utils.Database, new: NewImage, at: str) -> ImageRow:
    """Insert an image; returns it as committed-to-be."""
    spec, file = new.spec, new.file
    cur = db.conn.execute(
        "INSERT INTO firmware_images (version, vendor, model, release_notes, location, token, file_path,"
        " file_name, original_name, size, sha256, signing_certificate, signature, signed_only, version_match,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            spec.version,
            spec.vendor,
            spec.model,
            spec.release_notes,
            spec.location,
            None if file is None else file.token,
            None if file is None else file.path,
            new.file_name,
            new.original_name,
            None if file is None else file.size,
            None if file is None else file.sha256,
            spec.signing_certificate,
            spec.signature,
            int(spec.signed_only),
            spec.version_match,
            at,
        ),
    )
    assert cur.lastrowid is not None
    row = read_image(db.conn, cur.lastrowid)
    assert row is not None
    return row


def delete_image(db: sqlite_utils.Database, image_id: int) -> ImageRow:
    """Delete an image; returns what it was. Raises NotFoundError (field image_id)."""
    row = read_image(db.conn, image_id)
    if row is None:
        raise NotFoundError(f"firmware image {image_id} does not exist", field="image_id")
    db.conn.execute("DELETE FROM firmware_images WHERE id = ?", (image_id,))
    return row


class ImageRepository:
    """Firmware images, newest first in lists."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, image_id: int) -> ImageRow | None:
        """The image `image_id`, or None."""
        return read_image(self._store.reader, image_id)

    def by_token(self, token: str) -> ImageRow | None:
        """The uploaded image whose file URL carries `token` (unique index), or None."""
        v = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM firmware_images WHERE token = ?", (token,)
        ).fetchone()
        return None if v is None else _row(v)

    def has_token(self, token: str) -> bool:
        """Whether an image's file is stored under `token`."""
        found = self._store.reader.execute("SELECT 1 FROM firmware_images WHERE token = ?", (token,))
        return found.fetchone() is not None

    def page(self, limit: int, before: int | None = None, version: str | None = None) -> list[ImageRow]:
        """Up to `limit` images, newest (highest id) first, with an id below `before` when given, only those
        of `version` when given (index on version, id)."""
        where, args = [], []
        for cond, arg in (("id < ?", before), ("version = ?", version)):
            if arg is not None:
                where.append(cond)
                args.append(arg)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM firmware_images {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
        )
        return [_row(v) for v in cur.fetchall()]

    async def insert(self, new: NewImage) -> ImageRow:
        """Record an image (its spec checked by the caller); returns it as committed."""
        at = iso_utc(self._store.now())
        return await self._store.write(functools.partial(insert_image, new=new, at=at))

    async def delete(self, image_id: int) -> ImageRow:
        """Delete image `image_id`; returns what it was. Raises NotFoundError (field image_id)."""
        return await self._store.write(functools.partial(delete_image, image_id=image_id))
