"""The image directory: an upload is written as `.part` and renamed once whole, a file nobody kept is removed on
close, `.part` leftovers go at start, and `sweep` removes files no image names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import trio

from ampgate.errors import ValidationError
from ampgate.firmware_images import ImageFiles


def test_uploads_are_renamed_when_whole_and_removed_unless_kept(tmp_path: Path) -> None:
    files = ImageFiles(str(tmp_path / "fw"), max_bytes=1 << 20)
    data = os.urandom(600_000)

    async def main() -> None:
        kept = files.begin()
        await kept.write(data[:100])
        await kept.write(data[100:])
        stored = await kept.commit()
        assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
        assert sorted(os.listdir(files.directory)) == [kept.token]
        kept.keep()
        await kept.close()

        dropped = files.begin()
        await dropped.write(b"abc")
        await dropped.commit()
        await dropped.close()  # committed but never kept: its row failed

        partial = files.begin()
        await partial.write(os.urandom(300_000))  # past one flush: a .part file exists
        assert f"{partial.token}.part" in os.listdir(files.directory)
        with pytest.raises(ValidationError) as e:
            await partial.write(os.urandom(1 << 20))
        assert (e.value.code, e.value.field) == ("file_too_large", "file")
        await partial.close()
        assert sorted(os.listdir(files.directory)) == [kept.token]

    trio.run(main)


def test_leftovers_are_removed_at_start_and_by_sweep(tmp_path: Path) -> None:
    directory = tmp_path / "fw"
    directory.mkdir()
    for name in ("a.part", "known", "orphan"):
        (directory / name).write_bytes(b"x")
    files = ImageFiles(str(directory))
    assert sorted(os.listdir(directory)) == ["known", "orphan"]
    assert files.sweep(lambda token: token == "known") == 1
    assert os.listdir(directory) == ["known"]
