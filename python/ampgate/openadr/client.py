"""The VTN's HTTP API as async calls on httpx (which runs on trio through anyio): OAuth2 client credentials with
a cached token, and the OpenADR 3.0.1 paths the VEN uses.

Two outcomes besides an answer: `VtnUnreachable` (no connection, a timeout, a 5xx: the VTN cannot answer, and
the VEN's outage timer runs on) and `VtnRefused` (a 4xx: the VTN answered, so it is reachable, but said no).
A 401 on an API call drops the token and the call is made once more with a new one: a VTN may revoke or rotate
tokens before `expires_in` says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import msgspec

from ampgate.openadr.wire import TokenResponse

log = logging.getLogger(__name__)

T = TypeVar("T")

# A token is renewed this long before the VTN says it expires, so a call never leaves with a token that dies
# on the way (clock skew, a slow VTN).
TOKEN_MARGIN_S = 30.0
# A token whose answer gives no lifetime is kept this long: OAuth2 leaves the default to the server, and an
# hour is what most give; a 401 earlier still renews it.
DEFAULT_TOKEN_LIFETIME_S = 3600.0
# The spec's largest page (the `limit` query parameter's maximum).
PAGE = 50
# Pages read at most per listing: 50,000 objects, far above what one VEN is sent; a VTN that never stops
# paging is cut off here rather than looping for ever.
MAX_PAGES = 1000


class VtnUnreachable(Exception):
    """The VTN could not be reached or could not answer (connection, timeout, 5xx)."""


class VtnRefused(Exception):
    """The VTN answered a request with a 4xx; `status` and the body's text say why."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class TokenSource:
    """OAuth2 client credentials: a bearer token fetched from the token endpoint and kept until shortly before
    it expires. `token_url` None: the VTN's `/auth/server` names it (OpenADR 3.1), else `<vtn>/auth/token`
    (3.0.1)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        vtn_url: str,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None,
        monotonic: Callable[[], float],
    ) -> None:
        self._http = http
        self._vtn = vtn_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_url = token_url
        self._monotonic = monotonic
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0  # tokens obtained, for the status view and tests

    def invalidate(self) -> None:
        """Forget the token (after a 401): the next `token()` fetches a new one."""
        self._token = None

    async def token(self) -> str:
        """A valid bearer token. Raises VtnUnreachable, VtnRefused (bad credentials: 400/401)."""
        if self._token is not None and self._monotonic() < self._expires:
            return self._token
        url = await self._url()
        data = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        answer = await _send(self._http, "POST", url, data=data)
        try:
            body = msgspec.json.decode(answer.content, type=TokenResponse)
        except msgspec.ValidationError as e:
            raise VtnRefused(
                f"the token endpoint's answer is not a token: {e}", status=answer.status_code
            ) from None
        lifetime = body.expires_in if body.expires_in is not None else DEFAULT_TOKEN_LIFETIME_S
        self._token = body.access_token
        self._expires = self._monotonic() + max(0.0, lifetime - min(TOKEN_MARGIN_S, lifetime / 2))
        self.fetched += 1
        return self._token

    async def _url(self) -> str:
        if self._token_url is not None:
            return self._token_url
        url = f"{self._vtn}/auth/token"
        try:
            answer = await _send(self._http, "GET", f"{self._vtn}/auth/server")
            named = msgspec.json.decode(answer.content).get("tokenURL")
            if isinstance(named, str) and named:
                url = named
        except (VtnRefused, msgspec.DecodeError, AttributeError):
            pass  # a 3.0.1 VTN: no discovery, the token endpoint is under the VTN
        self._token_url = url
        return url


async def _send(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        answer = await http.request(method, url, **kwargs)
    except httpx.HTTPError as e:
        raise VtnUnreachable(f"{method} {url}: {type(e).__name__}: {e}") from None
    if answer.status_code >= 500:
        raise VtnUnreachable(f"{method} {url}: HTTP {answer.status_code}")
    if answer.status_code >= 400:
        raise VtnRefused(
            f"{method} {url}: HTTP {answer.status_code}: {answer.text[:300]}", status=answer.status_code
        )
    return answer


class VtnClient:
    """The OpenADR 3.0.1 calls the VEN makes. Objects go out as msgspec Structs; listings come back as raw JSON
    per object (`msgspec.Raw`), so that one malformed object is rejected alone instead of failing the page."""

    def __init__(self, http: httpx.AsyncClient, vtn_url: str, tokens: TokenSource) -> None:
        self._http = http
        self.base = vtn_url.rstrip("/")
        self.tokens = tokens

    async def aclose(self) -> None:
        """Close the HTTP client (its pooled connections)."""
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, body: Any = None, params: Any = None
    ) -> httpx.Response:
        """One call with the bearer token; on 401 once more with a fresh token. Raises VtnUnreachable,
        VtnRefused."""
        content = None if body is None else msgspec.json.encode(body)
        headers = {"Content-Type": "application/json"} if content is not None else {}
        for attempt in (1, 2):
            headers["Authorization"] = f"Bearer {await self.tokens.token()}"
            try:
                return await _send(
                    self._http, method, self.base + path, content=content, params=params, headers=headers
                )
            except VtnRefused as e:
                if e.status != 401 or attempt == 2:
                    raise
                log.info("OpenADR: the VTN refused our token (401); fetching a new one")
                self.tokens.invalidate()
        raise AssertionError("unreachable")

    async def list_raw(self, path: str, params: dict[str, Any] | None = None) -> list[msgspec.Raw]:
        """Every object of a listing, page by page (skip / limit). Raises VtnUnreachable, VtnRefused, and
        msgspec.DecodeError when a page is not a JSON array."""
        out: list[msgspec.Raw] = []
        for page in range(MAX_PAGES):
            answer = await self.request(
                "GET", path, params={**(params or {}), "skip": page * PAGE, "limit": PAGE}
            )
            items = msgspec.json.decode(answer.content, type=list[msgspec.Raw])
            out.extend(items)
            if len(items) < PAGE:
                break
        return out

    async def create(self, path: str, obj: Any, type_: type[T]) -> T:
        """POST `obj`; the created object as the VTN returns it. Raises VtnUnreachable, VtnRefused,
        msgspec.DecodeError."""
        answer = await self.request("POST", path, body=obj)
        return msgspec.json.decode(answer.content, type=type_)

    async def replace(self, path: str, obj: Any, type_: type[T]) -> T:
        answer = await self.request("PUT", path, body=obj)
        return msgspec.json.decode(answer.content, type=type_)

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)
