"""/api/v1/firmware/images over the stand-in: an image at an external location (JSON) and an uploaded one
(multipart, stored with its SHA-256 and given a public URL ending in its version), list (newest first, cursor
pages, version filter), get, delete (its file removed; 409 while a campaign uses it), the roles (viewers read,
only admins add and delete), the events, and every refusal with its status, code and field, nothing kept."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import trio

from ampgate.events import FirmwareImageCreated, FirmwareImageDeleted

from .conftest import MAX_FIRMWARE_BYTES, PUBLIC_BASE_URL, Api, Scenario

IMAGES = "/api/v1/firmware/images"
CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ==\n-----END CERTIFICATE-----\n"
FILE = bytes(range(256)) * 1000  # 256,000 bytes: several flushes to the worker thread


def events(a: Api) -> list[Any]:
    out = []
    while (e := a.node.events.receive_nowait()) is not None:
        out.append(e)
    return out


def stored_files(a: Api) -> list[str]:
    return sorted(os.listdir(a.node.firmware_images.files.directory))


async def upload(
    a: Api, data: bytes, fields: dict[str, str], name: str = "ac22_fw.bin", role: str = "admin"
) -> httpx.Response:
    return await a.client.post(
        IMAGES, data=fields, files={"file": (name, data, "application/octet-stream")}, headers=a.auth(role)
    )


async def refused(a: Api, r: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert (body["code"], body.get("field")) == (code, field), body
    assert stored_files(a) == [], "a refused image leaves no file"


def test_an_external_image_and_an_uploaded_one(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(
            IMAGES,
            json={
                "version": "v2.1.0",
                "vendor": "ABB",
                "model": "Terra AC*",
                "release_notes": "fixes",
                "location": "https://cdn.test/ac22/2.1.0.bin",
                "signing_certificate": CERT,
                "signature": "c2lnbmF0dXJl",
                "signed_only": True,
                "version_match": "normalized",
            },
            headers=a.auth("admin"),
        )
        assert r.status_code == 201, r.text
        ext = r.json()
        assert r.headers["location"] == f"{IMAGES}/{ext['id']}"
        assert ext["location"] == "https://cdn.test/ac22/2.1.0.bin"
        assert (ext["uploaded"], ext["sha256"], ext["size"], ext["file_name"]) == (False, None, None, None)
        assert (ext["signed_only"], ext["version_match"], ext["model"]) == (True, "normalized", "Terra AC*")

        r = await upload(a, FILE, {"version": "2.2.0", "vendor": "ABB", "signed_only": "false"})
        assert r.status_code == 201, r.text
        up = r.json()
        assert up["sha256"] == hashlib.sha256(FILE).hexdigest()
        assert (up["size"], up["uploaded"], up["file_name"], up["original_name"]) == (
            len(FILE),
            True,
            "2.2.0.bin",
            "ac22_fw.bin",
        )
        prefix = f"{PUBLIC_BASE_URL}/firmware/files/"
        assert up["location"].startswith(prefix) and up["location"].endswith("/2.2.0.bin")
        token = up["location"][len(prefix) :].split("/")[0]
        assert len(token) >= 43
        assert stored_files(a) == [token]
        stored = trio.Path(a.node.firmware_images.files.directory) / token
        assert await stored.read_bytes() == FILE

        got = events(a)
        assert [(type(e), e.image_id, e.uploaded) for e in got] == [
            (FirmwareImageCreated, ext["id"], False),
            (FirmwareImageCreated, up["id"], True),
        ]
        assert got[1].sha256 == up["sha256"]

        viewer = a.auth("viewer")
        r = await a.client.get(f"{IMAGES}/{up['id']}", headers=viewer)
        assert r.status_code == 200 and r.json() == up
        r = await a.client.get(IMAGES, headers=viewer)
        assert [i["id"] for i in r.json()["items"]] == [up["id"], ext["id"]]
        r = await a.client.get(IMAGES, params={"version": "v2.1.0"}, headers=viewer)
        assert [i["id"] for i in r.json()["items"]] == [ext["id"]]

        r = await a.client.delete(f"{IMAGES}/{up['id']}", headers=a.auth("admin"))
        assert r.status_code == 204, r.text
        assert stored_files(a) == []
        r = await a.client.get(f"{IMAGES}/{up['id']}", headers=viewer)
        assert (r.status_code, r.json()["field"]) == (404, "image_id")
        assert [(type(e), e.image_id) for e in events(a)] == [(FirmwareImageDeleted, up["id"])]

    api(scenario)


def test_pages_newest_first(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        ids = []
        for i in range(5):
            r = await a.client.post(
                IMAGES,
                json={"version": f"1.{i}", "location": f"https://cdn.test/{i}.bin"},
                headers=a.auth("admin"),
            )
            ids.append(r.json()["id"])
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await a.client.get(IMAGES, params=params, headers=a.auth("viewer"))).json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ids[::-1]
        r = await a.client.get(IMAGES, params={"cursor": "x"}, headers=a.auth("viewer"))
        assert (r.status_code, r.json()["field"]) == (422, "cursor")

    api(scenario)


def test_an_image_in_use_is_not_deleted(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await upload(a, b"firmware", {"version": "3.0"})
        image_id = r.json()["id"]
        a.node.images_in_use.add(image_id)
        r = await a.client.delete(f"{IMAGES}/{image_id}", headers=a.auth("admin"))
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (409, "image_in_use", "image_id")
        assert len(stored_files(a)) == 1
        a.node.images_in_use.clear()
        assert (await a.client.delete(f"{IMAGES}/{image_id}", headers=a.auth("admin"))).status_code == 204
        r = await a.client.delete(f"{IMAGES}/{image_id}", headers=a.auth("admin"))
        assert (r.status_code, r.json()["field"]) == (404, "image_id")

    api(scenario)


def test_only_admins_add_and_delete(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        body = {"version": "1", "location": "https://cdn.test/1.bin"}
        for role in ("viewer", "operator"):
            r = await a.client.post(IMAGES, json=body, headers=a.auth(role))
            assert (r.status_code, r.json()["code"]) == (403, "forbidden")
            r = await upload(a, FILE, {"version": "1"}, role=role)
            assert r.status_code == 403
        assert stored_files(a) == []
        image_id = (await a.client.post(IMAGES, json=body, headers=a.auth("admin"))).json()["id"]
        for role in ("viewer", "operator"):
            assert (await a.client.delete(f"{IMAGES}/{image_id}", headers=a.auth(role))).status_code == 403
            assert (await a.client.get(f"{IMAGES}/{image_id}", headers=a.auth(role))).status_code == 200
        assert (await a.client.get(IMAGES)).status_code == 401

    api(scenario)


def test_every_refusal_names_its_field_and_keeps_nothing(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        admin = a.auth("admin")
        loc = "https://cdn.test/fw.bin"

        async def json_body(body: dict[str, Any], code: str, field: str | None) -> None:
            await refused(a, await a.client.post(IMAGES, json=body, headers=admin), 422, code, field)

        await json_body({"version": "1", "location": loc, "signed_only": True}, "invalid_field", "signature")
        await json_body(
            {"version": "1", "location": loc, "signing_certificate": CERT + "x" * 5500},
            "invalid_field",
            "signing_certificate",
        )
        await json_body(
            {"version": "1", "location": "https://cdn.test/" + "a" * 500}, "invalid_field", "location"
        )
        await json_body({"version": "1"}, "invalid_field", "location")
        await json_body({"version": "1", "location": loc, "signature": "%%%"}, "invalid_field", "signature")
        await json_body(
            {"version": "1", "location": loc, "version_match": "fuzzy"}, "invalid_field", "version_match"
        )
        await json_body({"version": "1", "location": loc, "colour": "red"}, "invalid_field", "colour")
        await json_body({"location": loc}, "invalid_field", "version")
        await json_body({"version": "", "location": loc}, "invalid_field", "version")
        r = await a.client.post(
            IMAGES, content=b"{not json", headers={**admin, "content-type": "application/json"}
        )
        await refused(a, r, 422, "invalid_json", None)
        r = await a.client.post(IMAGES, content=b"x", headers={**admin, "content-type": "text/plain"})
        await refused(a, r, 422, "unsupported_media_type", "Content-Type")

        # Uploads: refused after the whole file arrived (the fields are read with it), the file removed.
        await refused(
            a,
            await upload(a, FILE, {"version": "1", "signed_only": "true"}),
            422,
            "invalid_field",
            "signature",
        )
        await refused(
            a, await upload(a, FILE, {"version": "1", "location": loc}), 422, "invalid_field", "location"
        )
        await refused(
            a,
            await upload(a, FILE, {"version": "1", "signed_only": "maybe"}),
            422,
            "invalid_field",
            "signed_only",
        )
        await refused(a, await upload(a, FILE, {}), 422, "invalid_field", "version")
        await refused(a, await upload(a, b"", {"version": "1"}), 422, "file_empty", "file")
        # Over the limit while streaming (announced size within the multipart slack) and announced far over it.
        await refused(
            a,
            await upload(a, b"x" * (MAX_FIRMWARE_BYTES + 1), {"version": "1"}),
            422,
            "file_too_large",
            "file",
        )
        await refused(
            a,
            await upload(a, b"x" * (3 * MAX_FIRMWARE_BYTES), {"version": "1"}),
            422,
            "file_too_large",
            "file",
        )
        r = await a.client.post(IMAGES, data={"version": "1"}, files={"other": ("a", b"b")}, headers=admin)
        await refused(a, r, 422, "invalid_field", "file")
        boundary = "XyZ"
        body = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\nabc'.encode()
        r = await a.client.post(
            IMAGES,
            content=body,
            headers={**admin, "content-type": f"multipart/form-data; boundary={boundary}"},
        )
        await refused(a, r, 422, "invalid_multipart", None)
        r = await a.client.get(IMAGES, headers=a.auth("viewer"))
        assert r.json()["items"] == []
        assert events(a) == []
        # Exactly at the limit is accepted.
        r = await upload(a, b"y" * MAX_FIRMWARE_BYTES, {"version": "1"})
        assert r.status_code == 201, r.text
        assert r.json()["size"] == MAX_FIRMWARE_BYTES

    api(scenario)
