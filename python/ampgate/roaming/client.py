"""Calls to other OCPI parties, async on httpx (which runs on trio through anyio).

Every request carries `Authorization: Token <base64 of the token>` (2.2.1; transport_and_format), a fresh
X-Request-ID and an X-Correlation-ID (the caller's, to tie a push to what caused it, or a fresh one), and, for
functional modules (locations, later sessions, CDRs, …), the routing headers naming us and the receiving party.
Answers are read as the envelope; `data` is decoded with the type the call expects.

Location pushes go over `push`, the same call on kept-alive HTTP/1.1 connections of our own (`http1`): they are
the one call made at the rate of the fleet's status changes, where httpx's CPU per request would cost most of a
core.

Two outcomes besides an answer: `PartyUnreachable` (no connection, a timeout, a 5xx, an answer that is not an
OCPI envelope: the party could not answer) and `PartyRefused` (it answered, with an HTTP 4xx or an OCPI status
code outside 1xxx: it said no).
"""

from __future__ import annotations

import base64
import functools
import random
from typing import Any, TypeVar

import httpx
import msgspec

from ampgate.roaming.http1 import Http1Error, Http1Pool
from ampgate.roaming.types import (
    OCPI_VERSION,
    AnyEnvelope,
    Credentials,
    MalformedObject,
    Version,
    VersionDetails,
    decode,
)

T = TypeVar("T")

# How long one call to a party may take. Registration fetches two documents while the other party waits on its
# own POST to us, and a push is worthless when late: 10 s covers a slow party, not a dead one.
CALL_TIMEOUT_S = 10.0
# Money (Decimal) as JSON numbers, as OCPI's `number` is (msgspec's default writes strings).
_encode = msgspec.json.Encoder(decimal_format="number").encode


class PartyUnreachable(Exception):
    """The party could not be reached or could not answer."""


class PartyRefused(Exception):
    """The party answered no: `http_status`, and the envelope's `status_code` (None when there was none)."""

    def __init__(self, message: str, *, http_status: int, status_code: int | None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status_code = status_code


@functools.lru_cache(maxsize=64)
def token_header(token: str) -> str:
    """The Authorization header value for `token` (2.2.1: the token's UTF-8 bytes in Base64). Remembered for
    the few tokens in use: every push sends one."""
    return "Token " + base64.b64encode(token.encode("utf-8")).decode("ascii")


def request_ids(correlation_id: str | None = None) -> dict[str, str]:
    """X-Request-ID (always new) and X-Correlation-ID (`correlation_id`, or new)."""
    return {"X-Request-ID": new_id(), "X-Correlation-ID": correlation_id or new_id()}


def new_id() -> str:
    """A fresh random UUID (version 4) as text, for a request or correlation id. From `random` rather than
    `uuid.uuid4`: two ids per push, and uuid4 (os.urandom, a system call, then the UUID object) cost ~5 us each
    against ~1 us. An id must be unique, not unpredictable (it names a request in logs; it authorises nothing),
    and 122 random bits from a generator seeded from os.urandom at start are unique enough."""
    h = "%032x" % (_random_bits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_random_bits = random.Random().getrandbits
# The version (4) and variant (RFC 4122) bits of a UUID4, cleared then set.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


class OcpiClient:
    """Calls from us (`country_code`, `party_id`) to other parties over `http` (whose timeout should be
    CALL_TIMEOUT_S)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        country_code: str,
        party_id: str,
        *,
        pushes: Http1Pool | None = None,
    ) -> None:
        self._http = http
        self._pushes = pushes or Http1Pool(timeout_s=CALL_TIMEOUT_S)
        self.country_code = country_code
        self.party_id = party_id

    async def aclose(self) -> None:
        await self._pushes.aclose()
        await self._http.aclose()

    async def call(
        self,
        method: str,
        url: str,
        token: str,
        *,
        body: Any = None,
        to: tuple[str, str] | None = None,
        correlation_id: str | None = None,
    ) -> AnyEnvelope:
        """One request; the answer's envelope. `to`: the receiving party's (country code, party id) for a
        functional module (adds the routing headers). Raises PartyUnreachable, PartyRefused."""
        return (await self.exchange(method, url, token, body=body, to=to, correlation_id=correlation_id))[0]

    async def exchange(
        self,
        method: str,
        url: str,
        token: str,
        *,
        body: Any = None,
        to: tuple[str, str] | None = None,
        correlation_id: str | None = None,
    ) -> tuple[AnyEnvelope, httpx.Headers]:
        """`call`, with the answer's headers (a CDR's POST is answered with its Location there)."""
        headers, content = self._request(token, body, to, correlation_id)
        try:
            answer = await self._http.request(method, url, content=content, headers=headers)
        except httpx.HTTPError as e:
            raise PartyUnreachable(f"{method} {url}: {type(e).__name__}: {e}") from None
        return _envelope(method, url, answer.status_code, answer.content), answer.headers

    async def push(
        self, method: str, url: str, token: str, *, body: Any, to: tuple[str, str] | None = None
    ) -> AnyEnvelope:
        """`call` over the kept-alive push connections (`http1.Http1Pool`): what the Location pusher sends, at
        the rate of the fleet's status changes. Same headers, same answers, same errors."""
        headers, content = self._request(token, body, to, None)
        try:
            status, answer = await self._pushes.request(method, url, headers, content)
        except Http1Error as e:
            raise PartyUnreachable(f"{method} {url}: {e}") from None
        return _envelope(method, url, status, answer)

    def _request(
        self, token: str, body: Any, to: tuple[str, str] | None, correlation_id: str | None
    ) -> tuple[dict[str, str], bytes | None]:
        headers = {"Authorization": token_header(token), **request_ids(correlation_id)}
        content = None
        if body is not None:
            content = _encode(body)
            headers["Content-Type"] = "application/json"
        if to is not None:
            headers |= {
                "OCPI-from-country-code": self.country_code,
                "OCPI-from-party-id": self.party_id,
                "OCPI-to-country-code": to[0],
                "OCPI-to-party-id": to[1],
            }
        return headers, content

    async def fetch(self, url: str, token: str, type_: type[T]) -> T:
        """GET `url` and decode its `data` as `type_`. Raises PartyUnreachable, PartyRefused (also for data
        that is not a `type_`: the party answered, with something we cannot use)."""
        envelope = await self.call("GET", url, token)
        if not envelope.has_data():
            raise PartyRefused(f"GET {url}: no data", http_status=200, status_code=envelope.status_code)
        try:
            return decode(envelope.data, type_)
        except MalformedObject as e:
            raise PartyRefused(
                f"GET {url}: data is not a {type_.__name__}: {e.field or '$'}: {e.message}",
                http_status=200,
                status_code=envelope.status_code,
            ) from None

    async def negotiate(self, versions_url: str, token: str) -> VersionDetails:
        """The party's 2.2.1 version details (from its versions endpoint). Raises PartyUnreachable,
        PartyRefused, UnsupportedVersion."""
        versions = await self.fetch(versions_url, token, list[Version])
        for v in versions:
            if v.version == OCPI_VERSION:
                return await self.fetch(v.url, token, VersionDetails)
        raise UnsupportedVersion(
            f"{versions_url} offers {', '.join(v.version for v in versions) or 'no version'}, not {OCPI_VERSION}"
        )

    async def post_credentials(self, url: str, token: str, ours: Credentials) -> Credentials:
        """Register with a party: POST our credentials with its registration token; its credentials back.
        Raises PartyUnreachable, PartyRefused."""
        envelope = await self.call("POST", url, token, body=ours)
        if not envelope.has_data():
            raise PartyRefused(
                f"POST {url}: no credentials", http_status=200, status_code=envelope.status_code
            )
        try:
            return decode(envelope.data, Credentials)
        except MalformedObject as e:
            raise PartyRefused(
                f"POST {url}: its credentials do not decode: {e.field or '$'}: {e.message}",
                http_status=200,
                status_code=envelope.status_code,
            ) from None


class UnsupportedVersion(Exception):
    """The party offers no version we speak."""


def _envelope(method: str, url: str, http_status: int, content: bytes) -> AnyEnvelope:
    """The envelope of an answer, or the error it means (see the module docstring)."""
    if http_status >= 500:
        raise PartyUnreachable(f"{method} {url}: HTTP {http_status}")
    try:
        envelope = msgspec.json.decode(content, type=AnyEnvelope) if content else None
    except msgspec.DecodeError:
        envelope = None
    if http_status >= 400:
        raise PartyRefused(
            f"{method} {url}: HTTP {http_status}: {content[:300].decode('utf-8', 'replace')}",
            http_status=http_status,
            status_code=envelope.status_code if envelope else None,
        )
    if envelope is None:
        raise PartyUnreachable(f"{method} {url}: the answer is not an OCPI response envelope")
    if not 1000 <= envelope.status_code < 2000:
        raise PartyRefused(
            f"{method} {url}: status_code {envelope.status_code}: {envelope.status_message or ''}",
            http_status=http_status,
            status_code=envelope.status_code,
        )
    return envelope
