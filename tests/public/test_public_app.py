"""The public surface in-process: its health route says only status and version and is rate-limited per
client address, file transfers are capped (503 with Retry-After past the cap, the slot held until the response
is complete), no operator route or token exists here, and URLs for outsiders come from the public base URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from litestar import get
from litestar.middleware import rate_limit as litestar_rate_limit
from litestar.response import Stream

from ampgate.errors import ValidationError
from ampgate.public import FILE_TRANSFER, PublicRoutes, TransferLimiter, create_public_app
from ampgate.public.app import HEALTH_RATE_PER_S
from ampgate.roaming.server import router as ocpi_router

BASE = "http://public.test"


class Health:
    def report(self) -> dict[str, Any]:
        return {"status": "ok", "version": "9.9", "workers": [{"pid": 1}], "chargers_online": 3}


release = trio.Event()


@get("/public/v1/test-file", opt={FILE_TRANSFER: True}, media_type="application/octet-stream")
async def slow_file() -> Stream:
    """A file whose body ends only when the test releases it."""

    async def body() -> AsyncIterator[bytes]:
        yield b"first part "
        await release.wait()
        yield b"last part"

    return Stream(body())


@get("/public/v1/test-small")
async def small() -> dict[str, str]:
    return {"ok": "yes"}


def run(scenario: Callable[[httpx.AsyncClient, TransferLimiter], Awaitable[None]], cap: int = 2) -> None:
    async def main() -> None:
        global release
        release = trio.Event()
        limiter = TransferLimiter(cap)
        app = create_public_app(Health(), limiter, [slow_file, small])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            with trio.fail_after(30):
                await scenario(client, limiter)

    trio.run(main)


def test_health_tells_outsiders_only_status_and_version() -> None:
    async def scenario(client: httpx.AsyncClient, _: TransferLimiter) -> None:
        r = await client.get("/public/v1/health")
        assert r.status_code == 200 and r.json() == {"status": "ok", "version": "9.9"}

    run(scenario)


def test_health_is_rate_limited_per_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # The limiter's window is the wall clock's second: hold it still so the test does not race it.
    monkeypatch.setattr(litestar_rate_limit, "time", lambda: 1_800_000_000.0)

    async def scenario(client: httpx.AsyncClient, _: TransferLimiter) -> None:
        codes = [(await client.get("/public/v1/health")).status_code for _ in range(HEALTH_RATE_PER_S)]
        assert codes == [200] * HEALTH_RATE_PER_S
        r = await client.get("/public/v1/health")
        assert r.status_code == 429 and r.json()["code"] == "too_many_requests"
        assert r.headers["ratelimit-remaining"] == "0"
        # Another route has its own budget.
        assert (await client.get("/public/v1/test-small")).status_code == 200

    run(scenario)


def test_file_transfers_past_the_cap_get_503_with_retry_after_until_one_completes() -> None:
    async def scenario(client: httpx.AsyncClient, limiter: TransferLimiter) -> None:
        done: list[bytes] = []

        async def fetch() -> None:
            r = await client.get("/public/v1/test-file")
            assert r.status_code == 200
            done.append(r.content)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch)
            nursery.start_soon(fetch)
            await trio.testing.wait_all_tasks_blocked()
            assert limiter.active == 2
            refused = await client.get("/public/v1/test-file")
            assert refused.status_code == 503
            assert refused.json()["code"] == "too_many_transfers"
            assert 5 <= int(refused.headers["retry-after"]) <= 30
            assert limiter.refused == 1
            # Routes that move no file are not counted.
            assert (await client.get("/public/v1/test-small")).status_code == 200
            release.set()
        assert done == [b"first part last part"] * 2 and limiter.active == 0
        assert (await client.get("/public/v1/test-file")).status_code == 200

    run(scenario)


def test_no_operator_route_and_no_token_on_the_public_surface() -> None:
    async def scenario(client: httpx.AsyncClient, _: TransferLimiter) -> None:
        for path in ("/api/v1/chargers", "/api/v1/health", "/api/v1/schema/openapi.json"):
            r = await client.get(path, headers={"Authorization": "Bearer agt_whatever"})
            assert r.status_code == 404 and r.json()["code"] == "not_found"

    run(scenario)


def test_public_urls_come_from_the_base_url() -> None:
    routes = PublicRoutes("https://cs.example.com/ampgate/")
    assert routes.url_for("/public/v1/files/abc") == "https://cs.example.com/ampgate/public/v1/files/abc"
    with pytest.raises(ValueError):
        routes.url_for("relative")
    for bad in ("ftp://x", "cs.example.com", "https://"):
        with pytest.raises(ValidationError) as info:
            PublicRoutes(bad)
        assert info.value.field == "public_base_url"
    with pytest.raises(ValueError):
        TransferLimiter(0)


def test_the_openapi_document_lists_the_public_routes_and_not_ocpi() -> None:
    async def main() -> None:
        app = create_public_app(Health(), TransferLimiter(2), [small, ocpi_router([])], {"ocpi": object()})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            r = await client.get("/public/v1/schema/openapi.json")
            assert r.status_code == 200, r.text
            doc = r.json()
            assert r.headers["ratelimit-limit"] == "5"
        assert set(doc["paths"]) == {"/public/v1/health", "/public/v1/test-small"}, doc["paths"]
        health = doc["paths"]["/public/v1/health"]["get"]
        assert set(health["responses"]) == {"200", "429"}
        assert health["responses"]["429"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }

    trio.run(main)
