"""The upload route of the public surface in-process, over a real receiver and store: a raw PUT and a multipart
POST are stored with their SHA-256, a token takes one complete upload, an oversize body is refused with 413 and
leaves no file (announced or streamed), unknown tokens and malformed multipart bodies are refused, and the route
counts as a file transfer."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import trio

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.logs import LogRepository, NewLogRequest, UploadReceiver
from ampgate.logs.uploads import new_upload_token
from ampgate.public import FILE_TRANSFER, TransferLimiter, create_public_app
from ampgate.public.uploads import upload_log
from ampgate.store import Store
from ampgate.store.hashing import token_digest

LIMIT = 4096


class Health:
    def report(self) -> dict[str, str]:
        return {"status": "ok", "version": "9.9"}


class Env:
    def __init__(self, client: httpx.AsyncClient, repo: LogRepository, receiver: UploadReceiver) -> None:
        self.client = client
        self.repo = repo
        self.receiver = receiver

    async def token(self) -> tuple[str, int]:
        """A new request taking an upload: its token and id."""
        token = new_upload_token()
        now = Clock().now()
        row = await self.repo.create(
            NewLogRequest(
                charger_id="CP",
                protocol="ocpp2.0.1",
                command="GetLog",
                log_type="DiagnosticsLog",
                request_id=None,
                location="https://x.test/public/v1/uploads/{token}",
                upload_token_hash=token_digest(token),
                upload_expires_at=now + timedelta(hours=1),
                at=now,
            )
        )
        return token, row.id

    def files(self) -> list[str]:
        return sorted(os.listdir(self.receiver.directory))


def run(tmp_path: Path, scenario: Callable[[Env], Awaitable[None]]) -> None:
    async def main() -> None:
        store = Store(str(tmp_path / "up.db"))
        repo = LogRepository(store)
        receiver = UploadReceiver(repo, EventBus(), Clock(), str(tmp_path / "uploads"), LIMIT)
        app = create_public_app(Health(), TransferLimiter(4), [upload_log], {"uploads": receiver})
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://public.test") as client:
                with trio.fail_after(20):
                    await scenario(Env(client, repo, receiver))
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_raw_put_is_stored_with_its_sha256_and_the_token_is_used_up(tmp_path) -> None:
    body = os.urandom(3000)

    async def scenario(env: Env) -> None:
        token, log_id = await env.token()
        r = await env.client.put(f"/public/v1/uploads/{token}", content=body)
        assert r.status_code == 200, r.text
        assert r.json() == {"size": 3000, "sha256": hashlib.sha256(body).hexdigest()}
        row = env.repo.get(log_id)
        assert (
            row is not None
            and row.file_path is not None
            and await trio.Path(row.file_path).read_bytes() == body
        )
        again = await env.client.put(f"/public/v1/uploads/{token}", content=b"other")
        assert again.status_code == 409 and again.json()["code"] == "upload_used"
        unknown = await env.client.put("/public/v1/uploads/nope", content=b"x")
        assert unknown.status_code == 404 and unknown.json()["code"] == "upload_not_found"

    run(tmp_path, scenario)


def test_a_multipart_post_keeps_the_file_part_and_its_name(tmp_path) -> None:
    body = os.urandom(2500)

    async def scenario(env: Env) -> None:
        token, log_id = await env.token()
        r = await env.client.post(
            f"/public/v1/uploads/{token}",
            data={"note": "before the file"},
            files={"file": ("diag-CP.zip", body, "application/zip")},
        )
        assert r.status_code == 200, r.text
        assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
        row = env.repo.get(log_id)
        assert row is not None and (row.file_name, row.file_size) == ("diag-CP.zip", 2500)
        # A raw POST, to the URL with the file name appended, as some chargers send it.
        token, log_id = await env.token()
        r = await env.client.post(f"/public/v1/uploads/{token}/logs-1.tar.gz", content=b"raw body")
        assert r.status_code == 200
        row = env.repo.get(log_id)
        assert row is not None and (row.file_name, row.file_size) == ("logs-1.tar.gz", 8)

    run(tmp_path, scenario)


def test_oversize_bodies_get_413_and_leave_no_file_and_the_token_takes_a_retry(tmp_path) -> None:
    async def stream() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000

    async def scenario(env: Env) -> None:
        token, _ = await env.token()
        announced = await env.client.put(f"/public/v1/uploads/{token}", content=b"x" * (LIMIT + 1))
        assert announced.status_code == 413 and announced.json()["code"] == "upload_too_large"
        # No Content-Length: refused while streaming, the partial file removed.
        streamed = await env.client.put(f"/public/v1/uploads/{token}", content=stream())
        assert streamed.status_code == 413
        multi = await env.client.post(
            f"/public/v1/uploads/{token}", files={"file": ("big.log", b"z" * (LIMIT + 1))}
        )
        assert multi.status_code == 413
        assert env.files() == []
        ok = await env.client.put(f"/public/v1/uploads/{token}", content=b"fits")
        assert ok.status_code == 200 and len(env.files()) == 1

    run(tmp_path, scenario)


def test_malformed_multipart_is_refused_and_the_route_is_a_file_transfer(tmp_path) -> None:
    async def scenario(env: Env) -> None:
        token, _ = await env.token()
        for headers, content in (
            ({"content-type": "multipart/form-data"}, b"--x\r\n"),
            ({"content-type": "multipart/form-data; boundary=x"}, b"--x\r\nContent-Disposition: form"),
            ({"content-type": "multipart/form-data; boundary=x"}, b"--x--\r\n"),
        ):
            r = await env.client.post(f"/public/v1/uploads/{token}", content=content, headers=headers)
            assert r.status_code == 400 and r.json()["code"] == "invalid_multipart", r.text
        assert env.files() == []
        assert upload_log.opt[FILE_TRANSFER] is True

    run(tmp_path, scenario)
