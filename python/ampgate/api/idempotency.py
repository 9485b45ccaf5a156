"""`Idempotency-Key` on the operator API's POSTs (shared/API-CONVENTIONS.md): a retry with the same key returns
the first outcome, so a client that lost an answer (a reservation, a log request, a command) can ask again
without causing a second OCPP call.

A key belongs to the token that used it and to one request: the same key with another method, path, query or
body is refused (422 `idempotency_key_reused`, field `Idempotency-Key`). While the first request runs, a retry
waits for its outcome instead of running it again. Outcomes are kept in memory for `TTL_S` (at most
`MAX_KEYS`, oldest dropped first); a node restart forgets them. A first request that never finished (the node
failed inside it) leaves nothing behind, so a retry runs. Replayed answers carry `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import trio
from litestar.types import ASGIApp, Receive, Scope, Send

# How long an outcome is kept, and how many at most (an entry is a few hundred bytes plus the answer).
TTL_S = 24 * 3600.0
MAX_KEYS = 50_000
MAX_KEY_CHARS = 255
HEADER = b"idempotency-key"
REPLAYED = (b"idempotent-replayed", b"true")


@dataclass
class _Outcome:
    fingerprint: bytes
    created: float
    done: trio.Event = field(default_factory=trio.Event)
    start: dict[str, Any] | None = None
    body: bytes = b""


class IdempotencyStore:
    """The outcomes by (token, key), oldest first."""

    def __init__(
        self, *, ttl_s: float = TTL_S, max_keys: int = MAX_KEYS, now: Callable[[], float] = time.monotonic
    ):
        self._entries: OrderedDict[tuple[bytes, str], _Outcome] = OrderedDict()
        self._ttl = ttl_s
        self._max = max_keys
        self._now = now

    def get(self, key: tuple[bytes, str]) -> _Outcome | None:
        self._expire()
        return self._entries.get(key)

    def begin(self, key: tuple[bytes, str], fingerprint: bytes) -> _Outcome:
        outcome = _Outcome(fingerprint, self._now())
        self._entries[key] = outcome
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return outcome

    def forget(self, key: tuple[bytes, str]) -> None:
        self._entries.pop(key, None)

    def _expire(self) -> None:
        limit = self._now() - self._ttl
        while self._entries:
            first = next(iter(self._entries.values()))
            if first.created >= limit:
                return
            self._entries.popitem(last=False)


def _error(status: int, code: str, message: str) -> tuple[dict[str, Any], bytes]:
    body = msgspec.json.encode({"code": code, "message": message, "field": "Idempotency-Key"})
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, body


class IdempotencyMiddleware:
    """Wraps the operator API (inside authentication, so only authenticated requests are remembered)."""

    def __init__(self, app: ASGIApp, store: IdempotencyStore, max_body: int) -> None:
        self.app = app
        self.store = store
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":  # type: ignore[typeddict-item]
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        raw_key = headers.get(HEADER)
        if raw_key is None:
            return await self.app(scope, receive, send)
        key = raw_key.decode("latin-1")
        if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
            return await self._send(
                send, *_error(422, "invalid_field", f"1 to {MAX_KEY_CHARS} printable characters")
            )
        # The whole body is read first: it is part of what the key stands for (the app caps its size anyway).
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, receive, send)
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
            if sum(map(len, chunks)) > self.max_body:
                return await self._send(
                    send, *_error(413, "payload_too_large", "the request body is too large")
                )
        body = b"".join(chunks)
        token = hashlib.sha256(headers.get(b"authorization", b"")).digest()
        fingerprint = hashlib.sha256(
            b"\0".join([b"POST", scope["path"].encode(), scope.get("query_string", b""), body])
        ).digest()
        slot = (token, key)

        found = self.store.get(slot)
        if found is not None:
            if found.fingerprint != fingerprint:
                return await self._send(
                    send,
                    *_error(422, "idempotency_key_reused", "this key was used for another request"),
                )
            await found.done.wait()
            if found.start is not None:
                start = {**found.start, "headers": [*found.start["headers"], REPLAYED]}
                return await self._send(send, start, found.body)
            # The first one never finished: run this one.
        outcome = self.store.begin(slot, fingerprint)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        parts: list[bytes] = []

        async def keep(message: Any) -> None:
            if message["type"] == "http.response.start":
                outcome.start = message
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, keep)
        except BaseException:
            outcome.start = None
            self.store.forget(slot)
            raise
        finally:
            outcome.body = b"".join(parts)
            outcome.done.set()

    @staticmethod
    async def _send(send: Send, start: dict[str, Any], body: bytes) -> None:
        await send(start)  # type: ignore[arg-type]
        await send({"type": "http.response.body", "body": body, "more_body": False})
