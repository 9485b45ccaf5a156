"""The firmware download route of the public surface: the Range header read as RFC 9110 says (one range served,
anything else the whole file, a start past the end 416), and the route in-process over a real image service:
206 with Content-Range, ETag and Accept-Ranges, 404 for a wrong token or name, and the transfer cap (503 with
Retry-After while every slot is taken); HEAD answers GET's headers without a body."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import trio

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.firmware_images import FirmwareImages, ImageFiles, ImageRepository, ImageSpec
from ampgate.public import FILE_TRANSFER, TransferLimiter, create_public_app
from ampgate.public.firmware_files import (
    RangeNotSatisfiableError,
    download_firmware,
    parse_range,
    probe_firmware,
)
from ampgate.store import Store


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=10-", (10, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=999-999", (999, 999)),
        (" bytes=1-2 ", (1, 2)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-1", None),
        ("bytes=5-1", None),  # malformed: ignored
        ("bytes=-", None),
        ("bytes=a-b", None),
        # Positions of any length (int() refuses more than 4,300 digits: these were 500s); leading zeros too.
        ("bytes=0-" + "9" * 5000, (0, 999)),
        ("bytes=-" + "9" * 5000, (0, 999)),
        ("bytes=" + "9" * 5001 + "-" + "9" * 5000, None),  # last before first: ignored
        ("bytes=" + "0" * 5000 + "7-0009", (7, 9)),
        ("bytes=\u0661-\u0662", None),  # Arabic-Indic digits are not digits here
    ],
)
def test_range_headers(header: str | None, wanted: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == wanted


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=" + "9" * 5000 + "-", "bytes=-" + "0" * 5000],
)
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError) as e:
        parse_range(header, 1000)
    assert e.value.status_hint == 416 and e.value.headers == {"Content-Range": "bytes */1000"}


class Health:
    def report(self) -> dict[str, str]:
        return {"status": "ok", "version": "9.9"}


def run(
    tmp_path: Path, scenario: Callable[[httpx.AsyncClient, FirmwareImages, TransferLimiter], Awaitable[None]]
) -> None:
    async def main() -> None:
        store = Store(str(tmp_path / "fw.db"))
        images = FirmwareImages(
            ImageRepository(store),
            ImageFiles(str(tmp_path / "firmware")),
            _Unused(),
            EventBus(),
            Clock(),
            lambda path: "http://public.test" + path,
        )
        limiter = TransferLimiter(1)
        app = create_public_app(Health(), limiter, [download_firmware, probe_firmware], {"images": images})
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://public.test") as client:
                with trio.fail_after(20):
                    await scenario(client, images, limiter)
            nursery.cancel_scope.cancel()

    trio.run(main)


class _Unused:
    def uses(self, image_id: int) -> bool:
        return False


def test_downloads_ranges_and_the_transfer_cap(tmp_path: Path) -> None:
    data = os.urandom(700_000)

    async def scenario(client: httpx.AsyncClient, images: FirmwareImages, limiter: TransferLimiter) -> None:
        upload = images.begin_upload()
        try:
            await upload.write(data)
            row = await images.create_uploaded(ImageSpec(version="3.0.1"), upload, "x.img")
        finally:
            await upload.close()
        path = images.location(row).removeprefix("http://public.test")
        assert path.endswith("/3.0.1.img")

        r = await client.get(path)
        assert r.status_code == 200 and r.content == data
        assert (
            r.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
            and r.headers["accept-ranges"] == "bytes"
        )
        r = await client.get(path, headers={"Range": "bytes=300000-"})
        assert r.status_code == 206 and r.content == data[300_000:]
        assert r.headers["content-range"] == f"bytes 300000-699999/{len(data)}"
        r = await client.get(path, headers={"Range": "bytes=5-9", "If-Range": r.headers["etag"]})
        assert r.status_code == 206 and r.content == data[5:10]
        r = await client.get(path, headers={"Range": "bytes=700000-"})
        assert (r.status_code, r.json()["code"]) == (416, "range_not_satisfiable")
        assert r.headers["content-range"] == "bytes */700000"
        token = path.split("/")[3]
        for wrong in (
            path.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B")),
            path + "x",
            "/firmware/files/x/y",
        ):
            assert (await client.get(wrong)).status_code == 404, wrong

        assert download_firmware.opt[FILE_TRANSFER]
        assert limiter.try_acquire()  # the one slot taken by another transfer
        r = await client.get(path)
        assert (r.status_code, r.json()["code"]) == (503, "too_many_transfers")
        assert 5 <= int(r.headers["retry-after"]) <= 30
        limiter.release()
        r = await client.get(path)
        assert r.status_code == 200 and limiter.active == 0

    run(tmp_path, scenario)


def test_head_answers_the_headers_of_get_without_the_body(tmp_path: Path) -> None:
    data = os.urandom(300_000)

    async def scenario(client: httpx.AsyncClient, images: FirmwareImages, limiter: TransferLimiter) -> None:
        upload = images.begin_upload()
        try:
            await upload.write(data)
            row = await images.create_uploaded(ImageSpec(version="3.0.2"), upload, "x.img")
        finally:
            await upload.close()
        path = images.location(row).removeprefix("http://public.test")
        got = await client.get(path)
        for headers in ({}, {"Range": "bytes=10-19"}):  # HEAD ignores Range (RFC 9110 defines it for GET)
            r = await client.head(path, headers=headers)
            assert r.status_code == 200 and r.content == b""
            for name in ("content-length", "accept-ranges", "etag", "content-type"):
                assert r.headers[name] == got.headers[name], name
            assert r.headers["content-length"] == str(len(data)) and "content-range" not in r.headers
        assert limiter.try_acquire()  # the only transfer slot taken: HEAD moves no file and still answers
        assert (await client.head(path)).status_code == 200
        limiter.release()
        assert (await client.head(path + "x")).status_code == 404
        assert (await client.head("/firmware/files/x/y")).status_code == 404

    run(tmp_path, scenario)
